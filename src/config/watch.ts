/**
 * Watches configuration files for changes and calls back once per burst of changes. Watches each
 * file's folder, not the file: editors and config managers replace files by renaming a new one over
 * the old, which a watch on the old inode would never see.
 */

import { type FSWatcher, watch } from 'node:fs';
import path from 'node:path';

/** How long a burst of file events may last before the callback runs once. */
export const RELOAD_DEBOUNCE_MS = 200;

/** A running watch; `close()` stops it. */
export interface FileWatch {
  close(): void;
}

/** Calls `onChange` (debounced) whenever one of `files` is written, created, renamed or removed. */
export function watchFiles(
  files: readonly string[],
  onChange: (changed: string[]) => void,
  onError: (error: Error) => void,
): FileWatch {
  const byDir = new Map<string, Set<string>>();
  for (const file of files) {
    const absolute = path.resolve(file);
    const dir = path.dirname(absolute);
    byDir.set(dir, (byDir.get(dir) ?? new Set()).add(path.basename(absolute)));
  }
  let timer: NodeJS.Timeout | null = null;
  const pending = new Set<string>();
  const watchers: FSWatcher[] = [];
  for (const [dir, names] of byDir) {
    try {
      const watcher = watch(dir, { persistent: false }, (_event, name) => {
        // Some platforms report no name: then any change in the folder counts.
        const changed = name === null ? [...names] : names.has(String(name)) ? [String(name)] : [];
        if (changed.length === 0) return;
        for (const one of changed) pending.add(path.join(dir, one));
        if (timer) clearTimeout(timer);
        timer = setTimeout(() => {
          timer = null;
          const batch = [...pending];
          pending.clear();
          onChange(batch);
        }, RELOAD_DEBOUNCE_MS);
      });
      watcher.on('error', onError);
      watchers.push(watcher);
    } catch (error) {
      onError(error as Error);
    }
  }
  return {
    close() {
      if (timer) clearTimeout(timer);
      for (const watcher of watchers) watcher.close();
    },
  };
}
