// Image build only (Dockerfile): load every module the fetch can load, so that Node.js compiles them into the
// compile cache the fetch reads at start-up (compile-cache.ts), then make the cache readable by every user.
import { chmod, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { compileCacheDir, flushCompileCache, startCompileCache } from './compile-cache.js';

const directory = compileCacheDir(import.meta.url);
if (!startCompileCache(directory)) {
  process.stderr.write(`compile cache: this Node.js (${process.version}) has none; nothing written\n`);
  process.exit(1);
}
await Promise.all([
  import('./command.js'),
  import('./run.js'),
  import('./fetch-log.js'),
  import('./diagnose.js'),
  import('../pkcs12.js'),
  import('./identity.js'),
  import('@azure/keyvault-secrets'),
  import('@azure/keyvault-keys'),
  import('@azure/keyvault-certificates'),
]);
flushCompileCache();
// Node writes its entries 0600; the image copies them owned by root.
for (const entry of await readdir(directory, { recursive: true, withFileTypes: true })) {
  await chmod(join(entry.parentPath, entry.name), entry.isDirectory() ? 0o555 : 0o444);
}
await chmod(directory, 0o555);
process.stdout.write(`compile cache: ${directory}\n`);
