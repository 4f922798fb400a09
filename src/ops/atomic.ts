import { readFileSync } from 'node:fs';
import { writeFileAtomic } from '../fsutil/atomic.js';

export { writeFileAtomic } from '../fsutil/atomic.js';

/** Like {@link writeFileAtomic}, but leaves an identical file alone; true when it wrote. */
export function writeIfChanged(file: string, content: string, mode: number): boolean {
  let current: string | null = null;
  try {
    current = readFileSync(file, 'utf8');
  } catch {
    // absent or unreadable: write it
  }
  if (current === content) return false;
  writeFileAtomic(file, content, mode);
  return true;
}
