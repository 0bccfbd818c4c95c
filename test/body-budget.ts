// The body budget: who gets in at once, who waits, in what order, and that every byte comes back exactly once.
import t from 'tap';
import { createBodyBudget, type BodyBudget, type Release } from '../webhook/body-budget.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const OPTIONS = { totalBytes: 6 * MiB, largeBytes: 4 * MiB, smallBodyBytes: 64 * KiB };

/** acquire() without a deadline; the result once settled (`pending` until then). */
function ask(budget: BodyBudget, bytes: number, signal: AbortSignal = new AbortController().signal): { state: () => Release | undefined | 'pending' } {
  let state: Release | undefined | 'pending' = 'pending';
  void budget.acquire(bytes, signal).then((release) => (state = release));
  return { state: () => state };
}

/** Let settled promises run their callbacks. */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

t.test('admits at once what fits, in each share', async (t) => {
  const cases: Array<{ name: string; held: number[]; next: number; admitted: boolean }> = [
    { name: 'an ordinary pod into an empty budget', held: [], next: 50 * KiB, admitted: true },
    { name: 'a 4 MiB body into an empty budget', held: [], next: 4 * MiB, admitted: true },
    { name: 'a second large body while 4 MiB of large ones are in', held: [4 * MiB], next: 100 * KiB, admitted: false },
    { name: 'a small body while the large share is full', held: [4 * MiB], next: 64 * KiB, admitted: true },
    { name: 'small bodies up to the whole budget', held: [4 * MiB, ...Array<number>(31).fill(64 * KiB)], next: 64 * KiB, admitted: true },
    { name: 'a small body past the whole budget', held: [4 * MiB, ...Array<number>(32).fill(64 * KiB)], next: 1, admitted: false },
    { name: 'large bodies that fit together', held: [2 * MiB, 1 * MiB], next: 1 * MiB, admitted: true },
  ];
  for (const c of cases) {
    const budget = createBodyBudget(OPTIONS);
    const held = c.held.map((bytes) => ask(budget, bytes));
    await settle();
    t.ok(
      held.every((h) => typeof h.state() === 'function'),
      `${c.name}: what is held got in`,
    );
    const next = ask(budget, c.next);
    await settle();
    t.equal(typeof next.state() === 'function', c.admitted, c.name);
  }
});

t.test('waiters go in arrival order as room comes back; a small one passes a large one that does not fit', async (t) => {
  const budget = createBodyBudget(OPTIONS);
  const first = ask(budget, 4 * MiB);
  await settle();
  const large = ask(budget, 3 * MiB);
  const small = ask(budget, 10 * KiB);
  await settle();
  t.equal(large.state(), 'pending', 'the large share is taken');
  t.type(small.state(), 'function', 'the small body is not held up by the large one waiting before it');
  t.same(budget.usage(), { bytes: 4 * MiB + 10 * KiB, largeBytes: 4 * MiB, waiting: 1 });

  (first.state() as Release)();
  await settle();
  t.type(large.state(), 'function', 'the waiting large body gets the room given back');
  t.same(budget.usage(), { bytes: 3 * MiB + 10 * KiB, largeBytes: 3 * MiB, waiting: 0 });
});

t.test('release is idempotent; every byte comes back', async (t) => {
  const budget = createBodyBudget(OPTIONS);
  const releases: Release[] = [];
  for (const bytes of [4 * MiB, 64 * KiB, 1 * KiB]) {
    const release = await budget.acquire(bytes, new AbortController().signal);
    if (release) releases.push(release);
  }
  t.equal(releases.length, 3);
  for (const release of releases) {
    release();
    release();
  }
  t.same(budget.usage(), { bytes: 0, largeBytes: 0, waiting: 0 });
});

t.test('an aborted wait resolves undefined, takes nothing, and lets others through', async (t) => {
  const budget = createBodyBudget(OPTIONS);
  const held = [4 * MiB, ...Array<number>(31).fill(64 * KiB)].map((bytes) => ask(budget, bytes));
  await settle();
  t.ok(held.every((h) => typeof h.state() === 'function'));
  const controller = new AbortController();
  const aborted = ask(budget, 64 * KiB + 1, controller.signal);
  await settle();
  t.equal(aborted.state(), 'pending');
  t.equal(budget.usage().waiting, 1);
  controller.abort();
  await settle();
  t.equal(aborted.state(), undefined, 'resolved without a release');
  t.same(budget.usage(), { bytes: 6 * MiB - 64 * KiB, largeBytes: 4 * MiB, waiting: 0 });

  const already = new AbortController();
  already.abort();
  t.equal(await budget.acquire(1, already.signal), undefined, 'an already aborted signal waits for nothing');
});

t.test('a body larger than its share is charged the share: admitted alone, never stuck', async (t) => {
  const budget = createBodyBudget(OPTIONS);
  const huge = await budget.acquire(10 * MiB, new AbortController().signal);
  t.type(huge, 'function');
  t.same(budget.usage(), { bytes: 4 * MiB, largeBytes: 4 * MiB, waiting: 0 });
});

t.test('inconsistent options are refused', async (t) => {
  for (const options of [
    { totalBytes: 4 * MiB, largeBytes: 6 * MiB, smallBodyBytes: 64 * KiB },
    { totalBytes: 6 * MiB, largeBytes: 0, smallBodyBytes: 64 * KiB },
    { totalBytes: 6 * MiB, largeBytes: 4 * MiB, smallBodyBytes: 4 * MiB },
  ]) {
    t.throws(() => createBodyBudget(options), RangeError, JSON.stringify(options));
  }
});
