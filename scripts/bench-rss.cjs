// Benchmark-only preload: on exit, write this process's peak RSS (KiB) to the file named by BENCH_RSS_FILE.
const fs = require('node:fs');

const file = process.env.BENCH_RSS_FILE;
if (file) {
  process.on('exit', () => {
    fs.writeFileSync(file, String(process.resourceUsage().maxRSS));
  });
}
