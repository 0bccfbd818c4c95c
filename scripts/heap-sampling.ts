// Bytes a piece of work allocates, by V8's sampling heap profiler with every object counted, collected or not: a
// figure of the code, where CPU time is a figure of the machine too. For the measurement scripts.
import { Session } from 'node:inspector';

/** Bytes allocated while `work` runs (sampled every 256 bytes), in this process. */
export async function allocatedBytes(work: () => Promise<unknown>): Promise<number> {
  const session = new Session();
  session.connect();
  const post = <T>(method: string, params: object = {}): Promise<T> =>
    new Promise((resolve, reject) => session.post(method, params, (error, result) => (error ? reject(error) : resolve(result as T))));
  try {
    await post('HeapProfiler.enable');
    await post('HeapProfiler.startSampling', { samplingInterval: 256, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
    await work();
    const { profile } = await post<{ profile: { samples: Array<{ size: number }> } }>('HeapProfiler.stopSampling');
    return profile.samples.reduce((sum, sample) => sum + sample.size, 0);
  } finally {
    session.disconnect();
  }
}
