// Why publishing the fetched files into the output folder failed, and how to fix it, for the fetch's summary.
import { PublishError } from '../atomic-writer.js';
import type { OutputFile } from '../object-spec.js';

export interface PublishFailure {
  reason: string;
  hint: string;
}

const VOLUME = 'the injected in-memory volume akv-injector-secrets (sizeLimit 16Mi)';

/** Explain `error`, thrown by publishFiles(`outputDir`, `files`). */
export function explainPublishFailure(error: unknown, outputDir: string, files: readonly OutputFile[]): PublishFailure {
  if (error instanceof PublishError) {
    const missing = error.problems.some((p) => p.includes('does not exist') || p.includes('is not a directory'));
    return {
      reason: error.problems.join('; '),
      hint: missing
        ? `AKV_INJECTOR_OUTPUT_DIR must be the mounted secrets volume (the webhook mounts ${VOLUME} there): check that the pod spec still mounts it`
        : 'remove what is named from the volume (names starting with ".." and the objects\' aliases belong to this writer), or give the objects other aliases',
    };
  }
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  const bytes = files.reduce((n, f) => n + f.data.length, 0);
  const size = `${files.length} files, ${bytes} bytes`;
  switch (code) {
    case 'ENOSPC':
    case 'EDQUOT':
      return {
        reason: `no space left in ${outputDir} (${code}) for the objects (${size})`,
        hint: `the objects exceed the space left on ${VOLUME}: fetch fewer or smaller objects (objectVersionHistory writes a file per version)`,
      };
    case 'EFBIG':
      return {
        reason: `a file is larger than the process may write (EFBIG) for the objects (${size})`,
        hint: 'the init container runs under a file-size limit (RLIMIT_FSIZE) smaller than an object: lift the limit, or fetch smaller objects',
      };
    case 'EROFS':
      return {
        reason: `${outputDir} is on a read-only file system (EROFS)`,
        hint: 'mount the secrets volume read-write into the init container (only the app containers get it read-only)',
      };
    case 'EACCES':
    case 'EPERM':
      return {
        reason: `permission denied writing into ${outputDir} (${code})`,
        hint: "the init container's user must be able to write to the volume: check the pod's fsGroup and runAsUser, and what else changes the volume's mode",
      };
    case 'ENOENT':
    case 'ENOTDIR':
      return {
        reason: `${outputDir} changed while the files were written (${code})`,
        hint: 'another process is changing the output folder: only the fetch may write to the secrets volume',
      };
    default:
      return {
        reason: `writing into ${outputDir} failed (${code !== undefined && /^E[A-Z]+$/.test(code) ? code : 'unexpected error'})`,
        hint: 'check the volume mounted at AKV_INJECTOR_OUTPUT_DIR',
      };
  }
}
