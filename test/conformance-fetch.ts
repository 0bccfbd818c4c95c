// The CSI provider's conformance data, fetch side: each case of fetch-cases.json (a Key Vault store, the objects
// asked for) and of spc-fetch-cases.json (an accepted SPC's objects, as the webhook injects them) runs through the
// bundled `fetch` against the Entra ID and Key Vault emulators; the published files are compared byte for byte,
// with their modes and the exact set of entries. A failure names the case, its source and each difference.
import t, { type Test } from 'tap';
import { loadAdmissionCases } from './fixtures/conformance.js';
import { differences, loadConformance, storeLoader, type Expect } from './fixtures/conformance-fetch.js';
import { buildDist, runCliBounded } from './fixtures/dist.js';
import { startFetchWorld } from './fixtures/fetch-world.js';

const data = loadConformance();
// One emulator pair for every case: object names are unique across the stores (the loader checks).
const world = await startFetchWorld();
t.teardown(() => world.close());
const cliPath = await buildDist(world.dir);
const load = storeLoader(world.vault, data);
for (const c of data.fetchCases) load(c.store);
load(data.spcFetch.store);

/** Cases run at once: each is a process of its own. */
const JOBS = 4;
/** A run still going after this is a hang: killed, and the case fails. */
const BOUND_MS = 60_000;
// world.job checks the objects it is given; some cases' lists are invalid on purpose, so the job (token file,
// output folder) is made for this stand-in and the child gets the case's own list.
const STAND_IN = [{ objectName: 'stand-in', objectType: 'secret' }];

interface Run {
  /** AKV_INJECTOR_OBJECTS as the child gets it. */
  objects: string;
  expect: Expect;
  /** Names the case in every assertion: its id and its source. */
  label: string;
  env?: Record<string, string>;
}

/** Run the bundled fetch for `objects`; returns the folder it published into. */
async function fetch(t: Test, objects: string, expect: Expect, label: string, extraEnv: Record<string, string> = {}): Promise<string> {
  const job = await world.job(STAND_IN);
  const env = world.childEnv(job, [], { AKV_INJECTOR_OBJECTS: objects, ...extraEnv });
  const result = await runCliBounded(cliPath, ['fetch', '--timeout', '30s'], env, { boundMs: BOUND_MS, cwd: world.dir });
  t.notOk(result.killed, `${label}: ends within ${BOUND_MS} ms`);
  if (expect.fail) t.not(result.code, 0, `${label}: exits non-zero`, { stdout: result.stdout });
  else t.equal(result.code, 0, `${label}: exits 0`, { stderr: result.stderr });
  return job.outputDir;
}

async function fetchAndCompare(t: Test, run: Run): Promise<void> {
  const outputDir = await fetch(t, run.objects, run.expect, run.label, run.env);
  t.same(await differences(outputDir, run.expect, data), [], `${run.label}: the published files`);
}

t.test('the comparison sees each kind of difference', async (t) => {
  const c = data.fetchCases.find((fc) => fc.id === 'versions-latest-5');
  if (c === undefined || c.expect.files === undefined) throw new Error('fetch-cases.json has no case versions-latest-5 with files');
  const outputDir = await fetch(t, JSON.stringify(c.objects), c.expect, c.id);
  const files = c.expect.files;
  const { 'lv-latest/4': _last, ...lessFiles } = files;
  const variants: Array<{ name: string; expect: Expect; difference: RegExp }> = [
    {
      name: 'one byte',
      expect: { ...c.expect, files: { ...files, 'lv-latest/0': { parts: [{ text: 'lv-latest-value-A' }] } } },
      difference: /^lv-latest\/0: expected 17 bytes, got 17; they differ from byte 16: expected …"est-value-A", got …"est-value-a"$/,
    },
    {
      name: 'a mode',
      expect: { ...c.expect, files: { ...files, 'lv-latest/0': { parts: [{ text: 'lv-latest-value-a' }], mode: '0640' } } },
      difference: /^lv-latest\/0: mode expected 0640, got 0644$/,
    },
    {
      name: 'a missing file',
      expect: { ...c.expect, files: { ...files, 'lv-latest/5': { parts: [] } } },
      difference: /^lv-latest\/5: missing$/m,
    },
    { name: 'a file too many', expect: { ...c.expect, files: lessFiles }, difference: /^files: expected \[.*"lv-latest\/3"\], got \[.*"lv-latest\/4"\]$/ },
    { name: 'a top-level entry', expect: { ...c.expect, only: ['lv-latest', 'other'] }, difference: /^top-level entries: expected \["lv-latest","other"\], got \["lv-latest"\]$/ },
    {
      name: 'a folder entry',
      expect: { ...c.expect, dirExactly: { 'lv-latest': ['0', '1'] } },
      difference: /^entries of lv-latest\/: expected \["0","1"\], got \["0","1","2","3","4"\]$/,
    },
    { name: 'a failure', expect: { fail: true }, difference: /^nothing written expected, got \["\.\..*","\.\.data","lv-latest"\]$/ },
  ];
  t.same(await differences(outputDir, c.expect, data), [], 'as expected: no difference');
  for (const variant of variants) {
    t.match((await differences(outputDir, variant.expect, data)).join('\n'), variant.difference, variant.name);
  }
});

t.test('fetch-cases.json', { jobs: JOBS }, async (t) => {
  for (const c of data.fetchCases) {
    const objects = typeof c.objects === 'string' ? c.objects : JSON.stringify(c.objects);
    t.test(c.id, (t) => fetchAndCompare(t, { objects, expect: c.expect, label: `${c.id} (${c.source})` }));
  }
});

// The admission half (conformance.ts) asserts the webhook injects exactly these objects and this vault and
// authority; the same expectation run here makes the files: together, SPC → files. The identity stays the world's.
t.test('spc-fetch-cases.json', { jobs: JOBS }, async (t) => {
  const admissions = new Map(loadAdmissionCases().map((c) => [`${c.data} ${c.id}`, c]));
  for (const c of data.spcFetch.cases) {
    const admitted = admissions.get(`spc-cases.json ${c.spc}`)?.expect;
    if (admitted === undefined) throw new Error(`spc-fetch case ${c.spc} is not in spc-cases.json`);
    if (!admitted.allowed) throw new Error(`spc-fetch case ${c.spc}: the SPC is denied, and a denied case names no objects to fetch`);
    const vaultUrl = new URL(admitted.target.AKV_INJECTOR_VAULT_URL);
    vaultUrl.port = String(world.vault.port);
    const env = {
      AKV_INJECTOR_VAULT_URL: vaultUrl.href,
      AZURE_AUTHORITY_HOST: world.entra.authorityHostFor(new URL(admitted.target.AZURE_AUTHORITY_HOST).hostname),
    };
    const objects = JSON.stringify(admitted.objects);
    t.test(c.spc, (t) => fetchAndCompare(t, { objects, expect: c.expect, label: `${c.spc} (${c.source})`, env }));
  }
});
