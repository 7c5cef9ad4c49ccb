/**
 * `pgward passwd USER`: stores a user's SCRAM-SHA-256 verifier (and, with `--md5`, the legacy md5 hash)
 * in the users file. Owns the command's steps: read the password (stdin or the terminal prompt), edit the
 * users file's text (users-file-edit.ts), write it atomically (atomic-write.ts) and report what was done.
 */

import { readFile } from 'node:fs/promises';
import { md5PasswordHash } from '../auth/password.ts';
import { createScramVerifier, formatScramVerifier } from '../auth/scram/verifier.ts';
import { writeFileAtomic } from '../config/atomic-write.ts';
import { setUserSecret, type UserSecrets } from '../credentials/users-file-edit.ts';
import { ConfigError } from '../errors/config-error.ts';
import { readHiddenAnswers, TerminalClosedError } from './prompt.ts';

/** What `pgward passwd` was asked to do. */
export interface PasswdOptions {
  user: string;
  /** The users file, as given (printed as given). */
  file: string;
  /** Read the password from stdin instead of prompting. */
  stdin: boolean;
  /** Also store the md5 hash, for the `md5` method. */
  md5: boolean;
}

/** A failure that ends the command with a message and an exit status. */
class PasswdFailure extends Error {
  readonly exitCode: number;

  constructor(message: string, exitCode = 1) {
    super(message);
    this.exitCode = exitCode;
  }
}

/** Exit status for Ctrl-C, as a shell reports a SIGINT. */
const EXIT_INTERRUPTED = 130;

async function readAllStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** The new password: stdin's whole text (one trailing newline removed), or typed twice at a terminal. */
async function readNewPassword(user: string, fromStdin: boolean): Promise<string> {
  let password: string;
  if (fromStdin) {
    password = (await readAllStdin()).replace(/\r?\n$/, '');
  } else if (process.stdin.isTTY) {
    const answers = await readHiddenAnswers(process.stdin, process.stderr, [
      `Enter new password for user ${JSON.stringify(user)}: `,
      'Enter it again: ',
    ]).catch((error: unknown) => {
      if (error instanceof TerminalClosedError)
        throw new PasswdFailure('the terminal closed before a password was entered');
      throw error;
    });
    if (answers === null) throw new PasswdFailure('interrupted; nothing written', EXIT_INTERRUPTED);
    const [first = '', second = ''] = answers;
    if (first !== second) throw new PasswdFailure("passwords didn't match; nothing written");
    password = first;
  } else {
    throw new PasswdFailure(
      'stdin is not a terminal, so pgward cannot prompt for the password; pipe it in with --stdin ' +
        '(printf %s "$PASSWORD" | pgward passwd USER --stdin)',
    );
  }
  if (password === '') throw new PasswdFailure('empty password; nothing written');
  return password;
}

async function readUsersText(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw error;
  }
}

async function runPasswdSteps(options: PasswdOptions): Promise<void> {
  const placeholder: UserSecrets = {
    scram: 'checked before the prompt',
    md5: options.md5 ? 'md5' : undefined,
  };
  // Check the file before asking for a password that could not be stored.
  setUserSecret(await readUsersText(options.file), options.file, options.user, placeholder);
  const password = await readNewPassword(options.user, options.stdin);
  const secrets: UserSecrets = {
    scram: formatScramVerifier(await createScramVerifier(password)),
    md5: options.md5 ? md5PasswordHash(password, options.user) : undefined,
  };
  const edit = setUserSecret(await readUsersText(options.file), options.file, options.user, secrets);
  await writeFileAtomic(options.file, edit.text);
  const user = JSON.stringify(options.user);
  const what = options.md5 ? 'SCRAM-SHA-256 verifier and md5 hash' : 'SCRAM-SHA-256 verifier';
  process.stdout.write(`pgward: wrote ${what} for ${user} to ${options.file}\n`);
  if (edit.removedMd5) {
    process.stderr.write(
      `pgward: removed the md5 hash of ${user}: it was for the old password (use --md5 to store a new one)\n`,
    );
  }
}

/** Runs `pgward passwd`; returns the exit status. */
export async function runPasswd(options: PasswdOptions): Promise<number> {
  try {
    await runPasswdSteps(options);
    return 0;
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\npgward: ${options.file} left unchanged\n`);
      return 1;
    }
    if (!(error instanceof PasswdFailure)) throw error;
    process.stderr.write(`pgward: ${error.message}\n`);
    return error.exitCode;
  }
}
