// The image build's rehearsed fetch (src/fetch/rehearsal.ts) on its stage (src/fetch/rehearsal-stage.ts): the real
// fetch, over TLS on the loopback interface, checked against what the stage served.
import type { LookupFunction } from 'node:net';
import t from 'tap';
import { rehearse } from '../src/fetch/rehearsal.js';
import { startRehearsalStage } from '../src/fetch/rehearsal-stage.js';

const stage = await startRehearsalStage();
t.teardown(() => stage.close());

t.test('the rehearsed fetch writes every secret the stage serves', async (t) => {
  await t.resolves(rehearse(stage));
});

t.test('a rehearsal whose files differ from what it was served fails, and with it the image build', async (t) => {
  await t.rejects(rehearse({ ...stage, secrets: { ...stage.secrets, 'db-password': 'another value' } }), /wrote db-password wrong/);
});

t.test('a rehearsed fetch that fails rejects with its summary', async (t) => {
  await t.rejects(rehearse({ ...stage, secrets: { missing: 'x' } }), /the rehearsed fetch failed:\nakv-injector: 1 of 1 objects could not be fetched/);
});

t.test("the stage's agent reaches Entra ID's and the vault's names on the loopback interface, and no other host", async (t) => {
  const lookup = (stage.agent.options as { lookup: LookupFunction }).lookup;
  const resolve = (hostname: string): Promise<string> =>
    new Promise((done, fail) => lookup(hostname, {}, (error, address) => (error ? fail(error) : done(address as string))));
  t.equal(await resolve(new URL(stage.vaultUrl).hostname), '127.0.0.1');
  t.equal(await resolve(new URL(stage.authorityHost).hostname), '127.0.0.1');
  await t.rejects(resolve('example.com'), { code: 'ENOTFOUND' });
});
