// Copies the generated core (glue + .wasm) next to the compiled package.
import { cpSync } from 'node:fs';
cpSync(new URL('../src/core/pkg', import.meta.url), new URL('../dist/core/pkg', import.meta.url), { recursive: true });
