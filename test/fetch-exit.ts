// A failed fetch, as the init container runs it: its exit follows its summary at once.
import { spawn } from 'node:child_process';
import t from 'tap';
import { buildDist } from './fixtures/dist.js';
import { exactEnv } from './fixtures/exact-env.js';
import { startFetchWorld } from './fixtures/fetch-world.js';

t.test('a failed fetch exits as soon as its summary is printed, with token requests still being retried', async (t) => {
  const world = await startFetchWorld();
  t.teardown(() => world.close());
  const fetchCli = await buildDist(world.dir);
  // Entra ID answers 503 with Retry-After: 20 to everything: the identity library's own retry of a token request
  // would keep the process for 20 s more.
  world.entra.failNext(10_000, { retryAfter: '20' });
  const objects = [{ objectName: 'db-password', objectType: 'secret' }];
  const job = await world.job(objects);
  const started = Date.now();
  const { code, stderr, summaryAt } = await new Promise<{ code: number | null; stderr: string; summaryAt: number }>((done) => {
    const child = spawn(...exactEnv(process.execPath, [fetchCli, 'fetch', '--timeout', '2s'], world.childEnv(job, objects)), {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let text = '';
    let at = 0;
    child.stderr.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      if (at === 0 && /^akv-injector: 1 of 1 objects could not be fetched/m.test(text)) at = Date.now();
    });
    child.on('close', (exitCode) => done({ code: exitCode, stderr: text, summaryAt: at }));
  });
  const exitedAt = Date.now();
  t.equal(code, 1);
  t.match(stderr, /deadline of 2s exceeded/);
  t.ok(summaryAt > 0, 'the summary was printed');
  // Measured: 30-600 ms on a loaded machine; without the prompt exit (cli/main.ts), 18 s while @azure/identity waits.
  t.ok(exitedAt - summaryAt < 5000, `exited ${exitedAt - summaryAt} ms after the summary (${summaryAt - started} ms to the summary)`);
});
