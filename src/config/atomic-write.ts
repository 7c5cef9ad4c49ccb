/**
 * Atomic replacement of a file's contents: readers see the old file or the new one, never a partial
 * write. Owns the temp file, the fsyncs, the rename and keeping the old file's mode and owner; does not
 * know what the contents mean.
 */

import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { open, realpath, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';

/** The mode of a file that did not exist before: it may hold secrets, so only its owner reads it. */
const NEW_FILE_MODE = 0o600;

/**
 * Replaces a file's contents atomically: a temp file in the same directory, with the old file's mode
 * (0600 for a new file) and, where permitted, its owner, is written, fsynced and renamed over it. The
 * temp file never outlives a failure. A symbolic link is followed, so the file it names is replaced.
 * A string is written as UTF-8.
 */
export async function writeFileAtomic(file: string, content: string | Uint8Array): Promise<void> {
  const target = await realpath(file).catch(() => path.resolve(file));
  const old = await stat(target).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined;
    throw error;
  });
  const mode = old ? old.mode & 0o7777 : NEW_FILE_MODE;
  const dir = path.dirname(target);
  const temp = path.join(dir, `.${path.basename(target)}.${randomBytes(6).toString('hex')}.tmp`);
  const handle = await open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
  try {
    try {
      await handle.writeFile(content, 'utf8');
      // open() applied the umask; the old file's mode is wanted as it was.
      await handle.chmod(mode);
      if (old) await handle.chown(old.uid, old.gid).catch(() => undefined);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, target);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
  // The rename is durable only once the directory is synced; some file systems refuse that, harmlessly.
  const dirHandle = await open(dir, 'r');
  await dirHandle.sync().catch(() => undefined);
  await dirHandle.close();
}
