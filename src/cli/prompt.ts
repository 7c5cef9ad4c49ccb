/**
 * The hidden-input terminal prompt: asks questions on a terminal in raw mode and reads the answers
 * without echo. Does not decide what is asked or what an answer means (the commands do), and does not
 * read a piped stdin.
 */

const CTRL_C = '\u0003';
const CTRL_D = '\u0004';
const CTRL_U = '\u0015';
const ESCAPE = '\u001b';

/** The terminal reached its end before every prompt was answered. */
export class TerminalClosedError extends Error {
  override readonly name = 'TerminalClosedError';

  constructor() {
    super('the terminal closed before every prompt was answered');
  }
}

/**
 * Reads one answer per prompt from a terminal in raw mode, without echo. Enter (or Ctrl-D) ends an
 * answer, Backspace removes a character, Ctrl-U the whole answer, escape sequences (arrow keys) are
 * ignored; Ctrl-C resolves null. Rejects with TerminalClosedError if the input ends first.
 */
export function readHiddenAnswers(
  input: NodeJS.ReadStream,
  output: NodeJS.WriteStream,
  prompts: readonly string[],
): Promise<string[] | null> {
  return new Promise((resolve, reject) => {
    const answers: string[] = [];
    let current: string[] = [];
    let inEscape = false;
    const finish = (result: string[] | null | Error) => {
      input.off('data', onData);
      input.off('end', onEnd);
      input.setRawMode(false);
      input.pause();
      if (result instanceof Error) reject(result);
      else resolve(result);
    };
    const onEnd = () => finish(new TerminalClosedError());
    const onData = (chunk: string) => {
      for (const char of chunk) {
        if (inEscape) {
          // A CSI sequence (ESC [ … final) ends with a letter or ~.
          inEscape = !/[A-Za-z~]/.test(char);
          continue;
        }
        if (char === CTRL_C) {
          output.write('\n');
          finish(null);
          return;
        }
        if (char === '\r' || char === '\n' || char === CTRL_D) {
          output.write('\n');
          answers.push(current.join(''));
          current = [];
          if (answers.length === prompts.length) {
            finish(answers);
            return;
          }
          output.write(prompts[answers.length] ?? '');
        } else if (char === '\u007f' || char === '\b') {
          current.pop();
        } else if (char === CTRL_U) {
          current = [];
        } else if (char === ESCAPE) {
          inEscape = true;
        } else if (char >= ' ') {
          current.push(char);
        }
      }
    };
    output.write(prompts[0] ?? '');
    input.setEncoding('utf8');
    input.setRawMode(true);
    input.on('data', onData);
    input.on('end', onEnd);
    input.resume();
  });
}
