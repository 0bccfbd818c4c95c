// bench:fetch's floor run as the fetch runs: scripts/bench-floor.cjs bundled into one script with the fetch's build
// plugins (`node scripts/build.js --floor FILE`), compiled with a V8 code cache taken after its first run, as the
// image's warm stage takes the fetch's after a rehearsal (src/fetch/code-cache.ts). FLOOR_SCRIPT names the bundle; its
// cache is FLOOR_SCRIPT.v8, written when a run finds none (bench:fetch's warm-up makes it, before it measures).
const fs = require('node:fs');
const path = require('node:path');
const vm = require('node:vm');

const file = process.env.FLOOR_SCRIPT;
const cacheFile = `${file}.v8`;
let cachedData;
try {
  cachedData = fs.readFileSync(cacheFile);
} catch {
  cachedData = undefined;
}
const script = new vm.Script(`(function (exports, require, module, __filename, __dirname) {${fs.readFileSync(file, 'utf8')}\n})`, {
  filename: file,
  ...(cachedData ? { cachedData } : {}),
});
if (script.cachedDataRejected) throw new Error(`V8 refused the floor's code cache ${cacheFile}`);
if (!cachedData) process.on('exit', () => fs.writeFileSync(cacheFile, script.createCachedData()));
const module_ = { exports: {} };
script.runInThisContext()(module_.exports, require, module_, file, path.dirname(file));
