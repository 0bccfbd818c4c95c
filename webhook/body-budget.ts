// How many request-body bytes the webhook takes in at once: requests past the budget wait, unread, for their turn.
//
// A parsed AdmissionReview costs many times its size in memory (~20× for a body of short map entries), so the
// bytes admitted together are what bounds the process's memory. Bodies over `smallBodyBytes` share `largeBytes`
// of it; the rest is kept for small bodies, so ordinary pods (5–50 KB) are never held up by large ones.

export interface BodyBudgetOptions {
  /** Body bytes admitted at once, all requests together. */
  totalBytes: number;
  /** Body bytes that bodies larger than `smallBodyBytes` may hold together (≤ totalBytes). */
  largeBytes: number;
  /** Largest body that counts as small. */
  smallBodyBytes: number;
}

export interface BudgetUsage {
  /** Bytes admitted and not yet released. */
  bytes: number;
  /** Of them, the bytes of large bodies. */
  largeBytes: number;
  /** Requests waiting for their turn. */
  waiting: number;
}

/** Given back once the request is over (answered, or its connection gone); calling it again does nothing. */
export type Release = () => void;

export interface BodyBudget {
  readonly options: Readonly<BodyBudgetOptions>;
  /** A release when `bytes` fit now (and no one waits before them), else undefined: the common case, without a wait. */
  tryAcquire(bytes: number): Release | undefined;
  /** Resolves once `bytes` fit (a release), or undefined when `signal` aborts first; never rejects. */
  acquire(bytes: number, signal: AbortSignal): Promise<Release | undefined>;
  usage(): BudgetUsage;
}

interface Waiter {
  bytes: number;
  grant: (release: Release) => void;
}

/** A budget of body bytes; waiters are served in arrival order, a small body passing a large one that does not fit yet. */
export function createBodyBudget(options: BodyBudgetOptions): BodyBudget {
  const { totalBytes, largeBytes, smallBodyBytes } = options;
  if (!(largeBytes > 0 && largeBytes <= totalBytes && smallBodyBytes > 0 && smallBodyBytes < largeBytes)) {
    throw new RangeError(`body budget: need 0 < smallBodyBytes < largeBytes ≤ totalBytes, got ${smallBodyBytes}, ${largeBytes}, ${totalBytes}`);
  }
  let used = 0;
  let usedLarge = 0;
  const waiters: Waiter[] = [];

  const isLarge = (bytes: number): boolean => bytes > smallBodyBytes;
  const fits = (bytes: number): boolean => used + bytes <= totalBytes && (!isLarge(bytes) || usedLarge + bytes <= largeBytes);

  const take = (bytes: number): Release => {
    used += bytes;
    if (isLarge(bytes)) usedLarge += bytes;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      used -= bytes;
      if (isLarge(bytes)) usedLarge -= bytes;
      serve();
    };
  };

  function serve(): void {
    for (let i = 0; i < waiters.length;) {
      const waiter = waiters[i] as Waiter;
      if (!fits(waiter.bytes)) {
        i++;
        continue;
      }
      waiters.splice(i, 1);
      waiter.grant(take(waiter.bytes));
    }
  }

  // A body bigger than its share could never fit: it is charged the share, admitted alone rather than never.
  const chargeOf = (bytes: number): number => Math.min(bytes, isLarge(bytes) ? largeBytes : totalBytes);
  const tryAcquire = (bytes: number): Release | undefined => {
    const charge = chargeOf(bytes);
    return waiters.length === 0 && fits(charge) ? take(charge) : undefined;
  };

  return {
    options: { ...options },
    tryAcquire,
    acquire(bytes, signal) {
      const charge = chargeOf(bytes);
      if (signal.aborted) return Promise.resolve(undefined);
      const now = tryAcquire(bytes);
      if (now !== undefined) return Promise.resolve(now);
      return new Promise((resolve) => {
        const waiter: Waiter = {
          bytes: charge,
          grant: (release) => {
            signal.removeEventListener('abort', onAbort);
            resolve(release);
          },
        };
        const onAbort = (): void => {
          const index = waiters.indexOf(waiter);
          if (index !== -1) waiters.splice(index, 1);
          resolve(undefined);
          // Its leaving may let a small body behind it through.
          serve();
        };
        signal.addEventListener('abort', onAbort, { once: true });
        waiters.push(waiter);
        serve();
      });
    },
    usage: () => ({ bytes: used, largeBytes: usedLarge, waiting: waiters.length }),
  };
}
