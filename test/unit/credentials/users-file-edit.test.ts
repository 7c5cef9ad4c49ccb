import { createHash } from 'node:crypto';
import t from 'tap';
import {
  createScramVerifier,
  formatScramVerifier,
  verifyPasswordAgainstScram,
} from '../../../src/auth/scram/verifier.ts';
import { parseUsersText } from '../../../src/credentials/users-file.ts';
import { setUserSecret, type UserSecrets } from '../../../src/credentials/users-file-edit.ts';
import { ConfigError } from '../../../src/errors/config-error.ts';

const PENCIL = formatScramVerifier(await createScramVerifier('pencil'));
const OTHER = formatScramVerifier(await createScramVerifier('old'));

/** md5 hashes as pg_authid stores them, written out here as an independent reference. */
function referenceMd5(password: string, user: string): string {
  return `md5${createHash('md5').update(`${password}${user}`).digest('hex')}`;
}

const FILE = `# Users pgward lets in.
users:
  # the admin
  alice:
    scram: "${OTHER}"   # rotated yearly
    md5: ${referenceMd5('old', 'alice')}
    groups: [admins, reports]   # for +admins
    upstream_login: reporting

  bob: { groups: [reports] }   # a flow-style entry

  # carol: disabled for now
`;

function edit(text: string, user: string, secrets: UserSecrets) {
  return setUserSecret(text, '/etc/pgward/users.yaml', user, secrets);
}

function problems(text: string, user = 'alice'): string[] {
  try {
    edit(text, user, { scram: PENCIL });
    return [];
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    return error.message.split('\n');
  }
}

t.test(
  "changing a user's verifier rewrites only that value: comments and other users stay byte for byte",
  async (t) => {
    const { text, removedMd5 } = edit(FILE, 'alice', { scram: PENCIL, md5: referenceMd5('pencil', 'alice') });
    t.equal(
      text,
      FILE.replace(OTHER, PENCIL).replace(
        referenceMd5('old', 'alice'),
        `"${referenceMd5('pencil', 'alice')}"`,
      ),
    );
    t.equal(removedMd5, false);
  },
);

t.test('the result is a users file pgward accepts, and its verifier checks the password', async (t) => {
  const { text } = edit(FILE, 'alice', { scram: PENCIL, md5: referenceMd5('pencil', 'alice') });
  const alice = parseUsersText('users.yaml', text, { upstreamLogins: new Set(['reporting']) }).find('alice');
  t.ok(alice?.scram);
  if (!alice?.scram) return;
  t.ok(await verifyPasswordAgainstScram('pencil', alice.scram));
  t.notOk(await verifyPasswordAgainstScram('Pencil', alice.scram));
  t.equal(alice.md5, referenceMd5('pencil', 'alice'));
  t.same([...alice.groups], ['admins', 'reports'], 'groups kept');
  t.equal(alice.upstreamLogin, 'reporting', 'upstream_login kept');
});

t.test(
  'without an md5 hash, an existing one is removed (it would be stale) and that is reported',
  async (t) => {
    const { text, removedMd5 } = edit(FILE, 'alice', { scram: PENCIL });
    t.equal(removedMd5, true);
    t.equal(text, FILE.replace(OTHER, PENCIL).replace(`    md5: ${referenceMd5('old', 'alice')}\n`, ''));
    t.equal(parseUsersText('users.yaml', text).find('alice')?.md5, undefined);
  },
);

t.test('a new user is added after the last one, everything before it unchanged', async (t) => {
  const { text, removedMd5 } = edit(FILE, 'dave', { scram: PENCIL });
  t.equal(removedMd5, false);
  const bobLine = '  bob: { groups: [reports] }   # a flow-style entry\n';
  const at = FILE.indexOf(bobLine) + bobLine.length;
  t.equal(text, `${FILE.slice(0, at)}  dave:\n    scram: "${PENCIL}"\n${FILE.slice(at)}`);
});

t.test('a user without secrets gets them as the first keys, other keys kept in their order', async (t) => {
  const before = 'users:\n  erin:\n    groups:\n      - ops\n    upstream_login: reporting\n';
  const { text } = edit(before, 'erin', { scram: PENCIL, md5: referenceMd5('pencil', 'erin') });
  t.equal(
    text,
    `users:\n  erin:\n    scram: "${PENCIL}"\n    md5: "${referenceMd5('pencil', 'erin')}"\n    groups:\n      - ops\n    upstream_login: reporting\n`,
  );
  const erin = parseUsersText('users.yaml', text, { upstreamLogins: new Set(['reporting']) }).find('erin');
  t.same([...(erin?.groups ?? [])], ['ops']);
});

t.test('the indentation the file uses is the indentation of the new lines', async (t) => {
  const before = 'users:\n    erin:\n        groups: [ops]\n';
  const { text } = edit(before, 'erin', { scram: PENCIL });
  t.equal(text, `users:\n    erin:\n        scram: "${PENCIL}"\n        groups: [ops]\n`);
});

t.test('a flow-style entry is rewritten in block style with its keys kept', async (t) => {
  const { text } = edit(FILE, 'bob', { scram: PENCIL });
  const bobLine = '  bob: { groups: [reports] }   # a flow-style entry\n';
  const bobBlock = `  bob:\n    scram: "${PENCIL}"\n    groups: [reports]\n    # a flow-style entry\n`;
  t.equal(text, FILE.replace(bobLine, bobBlock));
  t.same([...(parseUsersText('users.yaml', text).find('bob')?.groups ?? [])], ['reports']);
});

t.test('a missing or empty file becomes a users map with the one user', async (t) => {
  const expected = `users:\n  alice:\n    scram: "${PENCIL}"\n`;
  t.equal(edit('', 'alice', { scram: PENCIL }).text, expected);
  t.equal(edit('# users\n', 'alice', { scram: PENCIL }).text, `# users\n${expected}`);
  t.equal(edit('users:\n', 'alice', { scram: PENCIL }).text, expected);
  t.equal(edit('users: {}\n', 'alice', { scram: PENCIL }).text, expected);
  t.equal(
    edit('users: ~   # nobody yet\n# zed: later\n', 'alice', { scram: PENCIL }).text,
    `users:   # nobody yet\n  alice:\n    scram: "${PENCIL}"\n# zed: later\n`,
  );
  t.equal(edit('users:\n  alice:\n', 'alice', { scram: PENCIL }).text, expected);
});

t.test('Windows line ends stay Windows line ends', async (t) => {
  const before = 'users:\r\n  alice:\r\n    groups: [a]\r\n';
  const { text } = edit(before, 'alice', { scram: PENCIL });
  t.equal(text, `users:\r\n  alice:\r\n    scram: "${PENCIL}"\r\n    groups: [a]\r\n`);
});

t.test('any name PostgreSQL allows is quoted as YAML needs and read back as itself', async (t) => {
  const names = [
    'yes',
    '123',
    'null',
    '~',
    'a: b',
    '#x',
    '-dash',
    'with space',
    '"q"',
    "it's",
    'ünï',
    '@x',
    'a.b',
  ];
  for (const name of names) {
    for (const before of ['', FILE]) {
      const { text } = edit(before, name, { scram: PENCIL });
      const user = parseUsersText('users.yaml', text, { upstreamLogins: new Set(['reporting']) }).find(name);
      t.equal(user?.name, name, `${JSON.stringify(name)} in ${before ? 'a full' : 'an empty'} file`);
      t.ok(user?.scram && (await verifyPasswordAgainstScram('pencil', user.scram)));
    }
  }
});

t.test('a file that is not YAML is refused with file:line:column, and nothing is returned', async (t) => {
  t.match(problems('users:\n  alice: [admins\n'), [/^\/etc\/pgward\/users\.yaml:3:1: .+/]);
  t.match(problems('users:\n  alice: {}\n  alice: {}\n'), [
    '/etc/pgward/users.yaml:3:3: Map keys must be unique',
  ]);
});

t.test('users, or the entry of the user, that is not a map is refused at its position', async (t) => {
  t.same(problems('users: [alice]\n'), ['/etc/pgward/users.yaml:1:8: users: expected a map, got a list']);
  t.same(problems('users:\n  alice: pencil\n'), [
    '/etc/pgward/users.yaml:2:10: users.alice: expected a map, got string "pencil"',
  ]);
  t.same(problems('- alice\n'), ['/etc/pgward/users.yaml:1:1: expected a map, got a list']);
  t.same(problems('{ users: {} }\n'), [
    '/etc/pgward/users.yaml:1:1: expected the block map "users:" at the top, not a flow map',
  ]);
  t.same(problems('base: &base { groups: [ops] }\nusers:\n  alice: *base\n'), [
    '/etc/pgward/users.yaml:3:10: users.alice: an alias cannot be edited; write the map out in full',
  ]);
  t.same(
    problems('users:\n  alice: pencil\n', 'bob'),
    [],
    'a broken entry of another user is not our business',
  );
});
