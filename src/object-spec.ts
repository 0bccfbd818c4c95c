// The normalized description of one Key Vault object to fetch (DESIGN.md "Object fields").

export type ObjectType = 'secret' | 'key' | 'cert';
export type ObjectFormat = 'pem' | 'pfx';
export type ObjectEncoding = 'utf-8' | 'base64' | 'hex';

/** One object after validation: every field present, typed and normalized. */
export interface ObjectSpec {
  objectName: string;
  objectType: ObjectType;
  /** Empty string means the latest version. */
  objectVersion: string;
  /** Relative path under the output directory (subfolders allowed, never absolute, never `..`). */
  objectAlias: string;
  objectFormat: ObjectFormat;
  objectEncoding: ObjectEncoding;
  /** File mode, e.g. 0o644. */
  filePermission: number;
  /** How many versions to write; 1 writes `<alias>`, N > 1 writes `<alias>/0` … `<alias>/N-1`. */
  objectVersionHistory: number;
  optional: boolean;
}

/** One file of the published set: a path relative to the output directory, its bytes and mode. */
export interface OutputFile {
  path: string;
  data: Buffer;
  mode: number;
}
