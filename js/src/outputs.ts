/**
 * Files named by a record's UI outputs.
 * @module
 */
import type { ExecutionRecord, FileRef } from './types.js';

/** Every file among a record's outputs (`images`, `gifs`, `audio`, ... lists of `{filename, subfolder, type}`), in node order. */
export function files(record: Pick<ExecutionRecord, 'outputs'>): FileRef[] {
  const out: FileRef[] = [];
  for (const output of Object.values(record.outputs)) {
    if (typeof output !== 'object' || output === null) continue;
    for (const list of Object.values(output)) {
      if (!Array.isArray(list)) continue;
      for (const item of list as unknown[]) {
        if (typeof item !== 'object' || item === null) continue;
        const f = item as Record<string, unknown>;
        if (typeof f['filename'] !== 'string') continue;
        out.push({
          filename: f['filename'],
          subfolder: typeof f['subfolder'] === 'string' ? f['subfolder'] : '',
          type: typeof f['type'] === 'string' ? f['type'] : 'output',
        });
      }
    }
  }
  return out;
}
