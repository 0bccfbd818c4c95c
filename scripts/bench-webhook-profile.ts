// bench:webhook's CPU breakdown: the samples of a V8 CPU profile (node --cpu-prof) inside a time window, each put in
// the stage of the admission it was spent in, by the source file of the innermost frame of ours or of a dependency
// (mapped through the bundle's source maps); a built-in or Node.js internal frame counts for its nearest such caller.
import { readFileSync } from 'node:fs';
import { SourceMap, type SourceMapPayload } from 'node:module';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
export interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** Stage names in print order, with the sources that make them (matched against the original file's path). */
export const STAGES: ReadonlyArray<{ stage: string; files: RegExp }> = [
  { stage: 'parse (JSON, AdmissionReview)', files: /webhook\/(json-body|admission)\.ts$|node_modules\/secure-json-parse\// },
  { stage: 'lookups (informer caches)', files: /webhook\/(cluster-cache|lookups)\.ts$|node_modules\/@kubernetes\// },
  {
    stage: 'resolve (decide, shape, config)',
    files:
      /webhook\/(resolve|decide|pod-shape|names)\.ts$|src\/(objects|object-list|object-spec|quote|vault-url|azure-ids|clouds|dns-names)\.ts$|node_modules\/yaml\//,
  },
  { stage: 'replicas (template cache, bodies told by their bytes)', files: /webhook\/(replicas|imprint)\.ts$/ },
  { stage: 'inject', files: /webhook\/inject\.ts$/ },
  { stage: 'diff', files: /webhook\/diff\.ts$/ },
  { stage: 'serialize patch (mutate.ts)', files: /webhook\/mutate\.ts$/ },
  { stage: 'handler, reply body (server.ts)', files: /webhook\/(server|body-budget)\.ts$|scripts\/bench-webhook-child\.ts$/ },
  { stage: 'log (pino)', files: /src\/log\.ts$|node_modules\/(pino|sonic-boom|quick-format-unescaped|fast-redact|on-exit-leak-free|atomic-sleep)\// },
  { stage: 'metrics (prom-client)', files: /webhook\/metrics\.ts$|node_modules\/(prom-client|tdigest|bintrees)\// },
  { stage: 'fastify (routing, hooks, reply)', files: /node_modules\// },
];
/** Samples with no frame of ours or of a dependency above them. */
const NODE_INTERNALS = 'Node.js HTTP, TLS, streams';
const GC = 'garbage collection';
const OTHER = 'other (program, timers)';
export const ALL_STAGES: readonly string[] = [...STAGES.map((s) => s.stage), NODE_INTERNALS, GC, OTHER];

/** Original source path of a bundled position, via the bundle file's linked source map; undefined for other URLs. */
function sourceResolver(): (frame: CallFrame) => string | undefined {
  const maps = new Map<string, SourceMap | undefined>();
  return (frame) => {
    if (!frame.url.startsWith('file://')) return undefined;
    let map = maps.get(frame.url);
    if (!maps.has(frame.url)) {
      try {
        map = new SourceMap(JSON.parse(readFileSync(`${fileURLToPath(frame.url)}.map`, 'utf8')) as SourceMapPayload);
      } catch {
        map = undefined;
      }
      maps.set(frame.url, map);
    }
    const file = fileURLToPath(frame.url);
    if (map === undefined) return file;
    const entry = map.findEntry(frame.lineNumber, frame.columnNumber) as { originalSource?: string };
    // Sources are named relative to the map (esbuild): ../../fastify/lib/reply.js from node_modules/.cache/x/.
    return entry.originalSource === undefined ? undefined : resolve(dirname(file), entry.originalSource);
  };
}

/** µs of sampled CPU per stage between `fromUs` and `toUs` (the profile's clock: CLOCK_MONOTONIC, as process.hrtime), idle left out. */
export function stageTimes(profile: CpuProfile, fromUs: number, toUs: number): Map<string, number> {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const sourceOf = sourceResolver();
  const stageOfNode = new Map<number, string | undefined>();
  const own = (node: ProfileNode): string | undefined => {
    const source = sourceOf(node.callFrame);
    if (source === undefined) return undefined;
    return STAGES.find((s) => s.files.test(source))?.stage;
  };
  const stageOf = (id: number): string | undefined => {
    if (stageOfNode.has(id)) return stageOfNode.get(id);
    const node = byId.get(id);
    const up = parent.get(id);
    const stage = node === undefined ? undefined : (own(node) ?? (up === undefined ? undefined : stageOf(up)));
    stageOfNode.set(id, stage);
    return stage;
  };
  const hasInternalFrame = (id: number | undefined): boolean => {
    for (let at = id; at !== undefined; at = parent.get(at)) if (byId.get(at)?.callFrame.url.startsWith('node:')) return true;
    return false;
  };
  const out = new Map<string, number>(ALL_STAGES.map((s) => [s, 0]));
  let time = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    time += profile.timeDeltas[i] ?? 0;
    // A sample stands for the time until the next one.
    const weight = profile.timeDeltas[i + 1] ?? 0;
    if (time < fromUs || time > toUs) continue;
    const id = profile.samples[i] as number;
    const name = byId.get(id)?.callFrame.functionName;
    if (name === '(idle)' || name === '(root)') continue;
    const stage = name === '(garbage collector)' ? GC : (stageOf(id) ?? (hasInternalFrame(id) ? NODE_INTERNALS : OTHER));
    out.set(stage, (out.get(stage) ?? 0) + weight);
  }
  return out;
}
