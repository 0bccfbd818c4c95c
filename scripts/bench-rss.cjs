// Benchmark-only preload: on exit, write this process's peak RSS (KiB) to the file named by BENCH_RSS_FILE, and
// its CPU time so far (µs, user + system) to BENCH_CPU_FILE when set. The teardown after 'exit' is not counted.
const fs = require('node:fs');

const file = process.env.BENCH_RSS_FILE;
const cpuFile = process.env.BENCH_CPU_FILE;
if (file || cpuFile) {
  process.on('exit', () => {
    const usage = process.resourceUsage();
    if (file) fs.writeFileSync(file, String(usage.maxRSS));
    if (cpuFile) fs.writeFileSync(cpuFile, String(usage.userCPUTime + usage.systemCPUTime));
  });
}
