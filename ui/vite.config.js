import { defineConfig } from 'vite';

// `npm run build` (or `make ui`) writes the app into the Python package, which serves it at `/`.
// `npm run dev` serves it with hot reload and sends API calls to a Headwater on port 5000 (`make run`).
export default defineConfig({
  build: {
    outDir: '../app/ui/static',
    emptyOutDir: true,
    chunkSizeWarningLimit: 1500,
  },
  server: {
    proxy: { '/api': 'http://localhost:5000' },
  },
});
