// Image build only (Dockerfile): make the fetch's code cache (code-cache.ts) beside this file, in dist/code-cache,
// from a fetch rehearsed on the loopback interface (rehearsal-stage.ts). Run once, as the image's user, with the
// image's Node binary and NODE_OPTIONS: V8 uses a cache only under the version and flags it was made with.
import { makeCodeCache } from './code-cache.js';
import { startRehearsalStage } from './rehearsal-stage.js';

const stage = await startRehearsalStage();
try {
  const { path, bytes } = await makeCodeCache(import.meta.dirname, stage);
  process.stdout.write(`code cache: ${path} (${Math.round(bytes / 1024)} KiB)\n`);
} finally {
  await stage.close();
}
