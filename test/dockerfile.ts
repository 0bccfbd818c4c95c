// The Dockerfile cannot be built here (no Docker engine): check what it promises, statically.
import { readFile } from 'node:fs/promises';
import t from 'tap';

const text = await readFile(new URL('../Dockerfile', import.meta.url), 'utf8');
const stages = text
  .split(/^FROM /m)
  .slice(1)
  .map((s) => `FROM ${s}`);

t.test('a multi-stage build: npm ci and the bundler, the code cache, then distroless Node.js 24 as non-root', async (t) => {
  t.equal(stages.length, 3, 'three stages');
  const [build, warm, run] = stages as [string, string, string];
  // The fetch's code cache: made by the runtime image's Node binary, as its user, with its flags.
  t.match(warm, /^FROM gcr\.io\/distroless\/nodejs24-debian12:nonroot AS warm$/m);
  t.match(warm, /^USER 65532:65532$/m);
  t.match(warm, /^RUN \["\/nodejs\/bin\/node", "\/app\/dist\/code-cache-warm-up\.mjs"\]$/m);
  // V8 uses a code cache only under the flags it was made with: the warm-up runs with the fetch's NODE_OPTIONS.
  const nodeOptions = (stage: string): string | undefined => /^ENV .*\bNODE_OPTIONS=(\S+)/m.exec(stage)?.[1];
  t.equal(nodeOptions(warm), nodeOptions(run), "the warm-up's NODE_OPTIONS are the runtime image's");
  t.equal(nodeOptions(run), '--max-semi-space-size=1', "a small young generation bounds the fetch's peak memory");
  t.match(build, /^FROM node:24[\w.-]* AS build$/m);
  t.match(build, /^RUN npm ci\b/m, 'the lockfile install');
  t.match(build, /^RUN npm run build$/m, 'the bundler');
  t.match(run, /^FROM gcr\.io\/distroless\/nodejs24-debian12:nonroot$/m);
  t.match(run, /^USER 65532:65532$/m, 'uid 65532, as the injected init container expects');
  const copies = run.split('\n').filter((l) => l.startsWith('COPY'));
  t.same(copies, ['COPY --from=warm /app/dist /app/dist'], 'only the bundled dist/ (with its code cache) reaches the runtime image');
  t.match(
    run,
    /^ENTRYPOINT \["\/nodejs\/bin\/node", "\/app\/dist\/cli\.js"\]$/m,
    "the role is the first argument; node flags come from NODE_OPTIONS, which the webhook's Deployment replaces",
  );
});

t.test('everything the build copies exists and the build script bundles the CLI', async (t) => {
  for (const match of text.matchAll(/^COPY (?!--from)(.+) \S+$/gm)) {
    for (const source of (match[1] ?? '').split(' ')) {
      await t.resolves(
        readFile(new URL(`../${source}`, import.meta.url)).catch((e: NodeJS.ErrnoException) => (e.code === 'EISDIR' ? Buffer.alloc(0) : Promise.reject(e))),
        `${source} exists`,
      );
    }
  }
  const pkg = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8')) as {
    scripts: Record<string, string>;
    bin: Record<string, string>;
  };
  t.equal(pkg.scripts.build, 'node scripts/build.js');
  t.equal(pkg.bin['akv-injector'], 'dist/cli.js');
});
