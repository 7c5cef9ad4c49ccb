import { spawn, spawnSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import t from 'tap';
import { parse } from 'yaml';
import { verifyPasswordAgainstScram } from '../../src/auth/scram/verifier.ts';
import { parseUsersText } from '../../src/credentials/users-file.ts';
import { type CliResult, PGWARD_BIN, runPgward } from '../helpers/pgward-cli.ts';
import { startTestPostgres } from '../helpers/postgres.ts';

const dir = await mkdtemp(path.join(os.tmpdir(), 'pgward-cli-passwd-'));
await chmod(dir, 0o755);
t.teardown(() => rm(dir, { recursive: true, force: true }));

async function freshDir(name: string): Promise<string> {
  const sub = path.join(dir, name);
  await mkdir(sub, { recursive: true });
  return sub;
}

function userFrom(text: string, name: string) {
  return parseUsersText('users.yaml', text).find(name);
}

t.test(
  'passwd --stdin creates users.yaml with mode 0600, leaves no temp file, never prints the password',
  async (t) => {
    const cwd = await freshDir('create');
    const password = 'correct horse battery staple';
    const result = await runPgward(['passwd', 'alice', '--stdin'], cwd, { input: `${password}\n` });
    t.equal(result.code, 0, result.stderr);
    t.equal(result.stdout, 'pgward: wrote SCRAM-SHA-256 verifier for "alice" to users.yaml\n');
    t.equal(result.stderr, '');
    t.notMatch(result.stdout + result.stderr, password);
    t.same(await readdir(cwd), ['users.yaml'], 'no temp file left behind');
    t.equal((await stat(path.join(cwd, 'users.yaml'))).mode & 0o777, 0o600);
    const text = await readFile(path.join(cwd, 'users.yaml'), 'utf8');
    t.notMatch(text, password);
    const alice = userFrom(text, 'alice');
    t.ok(
      alice?.scram && (await verifyPasswordAgainstScram(password, alice.scram)),
      'one trailing newline removed',
    );
    t.equal(alice?.scram?.iterations, 4096);
    t.equal(alice?.scram?.salt.length, 16);
  },
);

t.test('passwd --file keeps the mode, the comments and the other users of an existing file', async (t) => {
  const cwd = await freshDir('existing');
  const file = path.join(cwd, 'users.yaml');
  const before = '# our users\nusers:\n  bob:\n    groups: [ops]   # on call\n';
  await writeFile(file, before);
  await chmod(file, 0o640);
  const result = await runPgward(['passwd', 'carol', '--file', file, '--md5', '--stdin'], cwd, {
    input: 'pw\r\n',
  });
  t.equal(result.code, 0, result.stderr);
  t.equal(result.stdout, `pgward: wrote SCRAM-SHA-256 verifier and md5 hash for "carol" to ${file}\n`);
  t.equal((await stat(file)).mode & 0o777, 0o640);
  const text = await readFile(file, 'utf8');
  t.ok(text.startsWith(before), 'what was there is kept byte for byte');
  const carol = userFrom(text, 'carol');
  t.ok(carol?.scram && (await verifyPasswordAgainstScram('pw', carol.scram)), 'one trailing CRLF removed');
  t.same(await readdir(cwd), ['users.yaml']);

  const again = await runPgward(['passwd', 'carol', '--file', file, '--stdin'], cwd, { input: 'pw2' });
  t.equal(again.code, 0, again.stderr);
  t.match(again.stderr, 'pgward: removed the md5 hash of "carol"');
  t.equal(userFrom(await readFile(file, 'utf8'), 'carol')?.md5, undefined);
});

t.test('a users file that is not YAML is refused at its position and left untouched', async (t) => {
  const cwd = await freshDir('broken');
  const broken = 'users:\n  alice: [admins\n';
  await writeFile(path.join(cwd, 'users.yaml'), broken);
  const result = await runPgward(['passwd', 'alice', '--stdin'], cwd, { input: 'pw' });
  t.equal(result.code, 1);
  t.match(result.stderr, /^users\.yaml:3:1: /m);
  t.match(result.stderr, 'pgward: users.yaml left unchanged');
  t.equal(await readFile(path.join(cwd, 'users.yaml'), 'utf8'), broken);
  t.same(await readdir(cwd), ['users.yaml']);
});

t.test('without a terminal and without --stdin, passwd says to use --stdin and writes nothing', async (t) => {
  const cwd = await freshDir('no-tty');
  const result: CliResult = await runPgward(['passwd', 'alice'], cwd);
  t.equal(result.code, 1);
  t.match(result.stderr, /stdin is not a terminal.*--stdin/);
  t.same(await readdir(cwd), []);
});

t.test('an empty password and an empty user name are refused', async (t) => {
  const cwd = await freshDir('empty');
  const empty = await runPgward(['passwd', 'alice', '--stdin'], cwd, { input: '\n' });
  t.equal(empty.code, 1);
  t.match(empty.stderr, 'pgward: empty password; nothing written');
  const noName = await runPgward(['passwd', '', '--stdin'], cwd, { input: 'pw' });
  t.equal(noName.code, 1);
  t.match(noName.stderr, 'the user name must not be empty');
  const noUser = await runPgward(['passwd', '--stdin'], cwd, { input: 'pw' });
  t.equal(noUser.code, 1);
  t.match(noUser.stderr, 'usage: pgward passwd USER');
  t.same(await readdir(cwd), []);
});

const hasScript = spawnSync('script', ['--version']).status === 0;

/** Runs `pgward <args>` on a pseudo-terminal (util-linux `script`), typing each answer after its prompt. */
function pgwardOnTerminal(args: readonly string[], cwd: string, typed: readonly [string, string][]) {
  const command = ['unset NODE_OPTIONS; exec', PGWARD_BIN, ...args].join(' ');
  return new Promise<CliResult>((resolve) => {
    const child = spawn('script', ['-qec', command, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'], cwd });
    let stdout = '';
    let next = 0;
    // A prompt that never comes would otherwise hang the file until tap's timeout.
    const timer = setTimeout(() => child.kill(), 30_000);
    child.stdout.on('data', (d) => {
      stdout += d;
      const step = typed[next];
      // Type only once the prompt is there: before it, the terminal still echoes.
      if (step && stdout.includes(step[0])) {
        next++;
        child.stdin.write(step[1]);
      }
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      child.stdin.destroy();
      resolve({ code, stdout, stderr: '' });
    });
  });
}

t.test(
  'at a terminal, passwd asks twice without echo and stores what was typed',
  { skip: !hasScript },
  async (t) => {
    const cwd = await freshDir('tty');
    const result = await pgwardOnTerminal(['passwd', 'tty_user'], cwd, [
      ['Enter new password for user "tty_user": ', 'secrX\u007fet pw\r'],
      ['Enter it again: ', 'secret pw\r'],
    ]);
    t.equal(result.code, 0, result.stdout);
    t.notMatch(result.stdout, 'secr', 'nothing typed is echoed');
    t.match(result.stdout, 'pgward: wrote SCRAM-SHA-256 verifier for "tty_user" to users.yaml');
    const user = userFrom(await readFile(path.join(cwd, 'users.yaml'), 'utf8'), 'tty_user');
    t.ok(
      user?.scram && (await verifyPasswordAgainstScram('secret pw', user.scram)),
      'backspace removed the X',
    );
  },
);

t.test('at a terminal, a mismatch and Ctrl-C write nothing', { skip: !hasScript }, async (t) => {
  const cwd = await freshDir('tty-refused');
  const mismatch = await pgwardOnTerminal(['passwd', 'u'], cwd, [
    ['Enter new password', 'one\r'],
    ['Enter it again: ', 'two\r'],
  ]);
  t.equal(mismatch.code, 1);
  t.match(mismatch.stdout, "pgward: passwords didn't match; nothing written");
  const interrupted = await pgwardOnTerminal(['passwd', 'u'], cwd, [['Enter new password', 'half\u0003']]);
  t.equal(interrupted.code, 130);
  t.same(await readdir(cwd), []);
});

t.test('against a real PostgreSQL', async (t) => {
  const upstream = await startTestPostgres(t);
  const cwd = await freshDir('postgres');
  const password = 'naïve pässword';
  const result = await runPgward(['passwd', 'scram_user', '--stdin'], cwd, { input: password });
  t.equal(result.code, 0, result.stderr);
  const md5Result = await runPgward(['passwd', 'md5_user', '--md5', '--stdin'], cwd, { input: 'pencil' });
  t.equal(md5Result.code, 0, md5Result.stderr);
  const doc = parse(await readFile(path.join(cwd, 'users.yaml'), 'utf8'));
  const login = (user: string, secret: string) =>
    new pg.Client({ host: upstream.host, port: upstream.port, user, password: secret, database: 'postgres' });

  t.test('the SCRAM verifier, stored as the role password, logs in with the password only', async (t) => {
    const verifier = doc.users.scram_user.scram as string;
    await upstream.query(`create role scram_user login password '${verifier}'`);
    const { rows } = await upstream.query("select rolpassword from pg_authid where rolname = 'scram_user'");
    t.equal(rows[0].rolpassword, verifier, 'PostgreSQL keeps it as given');
    const client = login('scram_user', password);
    await client.connect();
    t.same((await client.query('select current_user as u')).rows, [{ u: 'scram_user' }]);
    await client.end();
    await t.rejects(login('scram_user', 'naive password').connect(), {
      code: '28P01',
      message: 'password authentication failed for user "scram_user"',
    });
  });

  t.test("the md5 hash is PostgreSQL's own, and logs in with the md5 method", async (t) => {
    const hash = doc.users.md5_user.md5 as string;
    const { rows } = await upstream.query("select 'md5' || md5('pencil' || 'md5_user') as hash");
    t.equal(hash, rows[0].hash);
    await upstream.query(`create role md5_user login password '${hash}'`);
    // The test server's rules are scram-sha-256 only; an md5 rule for this role goes first.
    const hbaFile = (await upstream.query('show hba_file')).rows[0].hba_file as string;
    const rules = await readFile(hbaFile, 'utf8');
    await writeFile(hbaFile, `host all md5_user 127.0.0.1/32 md5\n${rules}`);
    await upstream.query('select pg_reload_conf()');
    // The postmaster rereads the rules after the signal, not before pg_reload_conf() returns.
    let client = login('md5_user', 'pencil');
    for (let attempt = 1; ; attempt++) {
      try {
        await client.connect();
        break;
      } catch (error) {
        if (attempt === 50) throw error;
        await new Promise((resolve) => setTimeout(resolve, 100));
        client = login('md5_user', 'pencil');
      }
    }
    t.same((await client.query('select current_user as u')).rows, [{ u: 'md5_user' }]);
    await client.end();
    await t.rejects(login('md5_user', 'Pencil').connect(), { code: '28P01' });
  });
});
