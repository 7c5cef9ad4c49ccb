/**
 * Ident maps: one hba.yaml with several maps, read by the real parser, and a table of (map, system
 * name, requested user) rows with the entry that must decide, or none. The expectations are
 * PostgreSQL's check_usermap: entries in order, first match wins, `\1` replaced by capture 1 and the
 * result compared as a plain name, names compared exactly.
 */

import t from 'tap';
import { type IdentMap, mapIdentity } from '../../../src/hba/ident-map.ts';
import { parseHbaText } from '../../../src/hba/parse.ts';

const MIN_ROWS = 30;

const HBA = String.raw`maps:
  literal:
    - { system: alice, user: alice }
    - { system: bob, user: robert }
    - { system: carol, user: "all" }
    - { system: dave, user: "+operators" }
  corp:
    - { system: "/^(.*)@example\\.com$", user: "\\1" }
    - { system: ops-robot, user: +operators }
    - { system: /^admin-, user: all }
    - { system: '/sysadmin', user: root }
  order:
    - { system: '/^(.*)$', user: 'first-\1' }
    - { system: '/^(.*)$', user: '\1' }
    - { system: '/^(.*)$', user: everyone }
  shapes:
    - { system: '/^CN=([^,]+),O=Example$', user: 'cert_\1' }
    - { system: '/^(?:(.+)@partner|guest)$', user: 'partner\1' }
    - { system: '/^(a+)$', user: '\1-\1' }
    - { system: '/^(?<name>[a-z]+)\.svc$', user: '\1' }
    - { system: '/^(.)-bot$', user: 'bot-\1' }
    - { system: '/^svc-', user: service }
rules:
  - { type: hostssl, address: all, database: a, user: all, method: cert, map: literal }
  - { type: hostssl, address: all, database: b, user: all, method: cert, map: corp }
  - { type: hostssl, address: all, database: c, user: all, method: jwt, validator: idp, map: order }
  - { type: hostssl, address: all, database: d, user: all, method: oauth, validator: idp, issuer: 'https://idp.example', scope: openid, map: shapes }
`;

const table = parseHbaText('hba.yaml', HBA);

const GROUPS: Readonly<Record<string, readonly string[]>> = {
  bob: ['operators'],
  erin: ['operators', 'auditors'],
};
const groupsOf = (user: string): ReadonlySet<string> => new Set(GROUPS[user] ?? []);

/** [map, system name, requested user, the entry that decides (0-based) or null for none, why]. */
type Row = [map: string, system: string, user: string, entry: number | null, why: string];

const ROWS: Row[] = [
  ['literal', 'alice', 'alice', 0, 'a literal system maps to a literal user'],
  ['literal', 'alice', 'bob', null, 'a literal entry admits only the user it names'],
  ['literal', 'Alice', 'alice', null, 'system names compare case-sensitively'],
  ['literal', 'alice', 'Alice', null, 'user names compare case-sensitively'],
  ['literal', 'alice ', 'alice', null, 'a trailing space is part of the name'],
  ['literal', 'bob', 'robert', 1, 'an identity may map to a different user'],
  ['literal', 'bob', 'bob', null, 'a map does not imply the identity itself'],
  ['literal', 'carol', 'all', 2, 'a quoted "all" is the user literally named all'],
  ['literal', 'carol', 'alice', null, 'a quoted "all" is not the keyword'],
  ['literal', 'dave', '+operators', 3, 'a quoted "+operators" is the user literally named +operators'],
  ['literal', 'dave', 'bob', null, 'a quoted "+operators" is not a group check'],
  ['literal', 'mallory', 'mallory', null, 'an identity no entry names maps to no one'],
  ['corp', 'alice@example.com', 'alice', 0, 'a regex with a capture maps through \\1'],
  ['corp', 'alice@example.com', 'bob', null, 'the substituted name admits only itself'],
  ['corp', 'alice@example.com.evil.org', 'alice', null, 'an anchored regex refuses a longer name'],
  ['corp', 'alice@exampleXcom', 'alice', null, 'an escaped dot is a dot'],
  ['corp', 'ALICE@EXAMPLE.COM', 'ALICE', null, 'regexes are case-sensitive'],
  ['corp', '@example.com', '', 0, 'an empty capture gives the empty name'],
  ['corp', 'all@example.com', 'bob', null, 'a capture reading "all" is a name, never the keyword'],
  ['corp', 'all@example.com', 'all', 0, 'a capture reading "all" admits the user named all'],
  ['corp', '+operators@example.com', 'bob', null, 'a capture reading "+operators" is never a group check'],
  ['corp', '$&@example.com', '$&', 0, 'replacement patterns in the capture are taken literally'],
  ['corp', 'josé@example.com', 'josé', 0, 'non-ASCII names map through \\1'],
  ['corp', 'jose\u0301@example.com', 'josé', null, 'names are not Unicode-normalized'],
  ['corp', '用户@example.com', '用户', 0, 'CJK names map through \\1'],
  ['corp', 'ops-robot', 'bob', 1, '+group admits a member of the group'],
  ['corp', 'ops-robot', 'erin', 1, '+group admits a member of several groups'],
  ['corp', 'ops-robot', 'operators', 1, '+group admits the user named like the group'],
  ['corp', 'ops-robot', 'carol', null, '+group refuses a user in no group'],
  ['corp', 'admin-7', 'anyone', 2, 'all admits any user'],
  ['corp', 'admin-', '', 2, 'all admits even the empty name'],
  ['corp', 'xadmin-7', 'anyone', null, 'a ^-anchored regex does not match later in the name'],
  ['corp', 'old-sysadmin-box', 'root', 3, 'an unanchored regex matches anywhere in the name'],
  ['corp', 'old-sysadmin-box', 'admin', null, 'an unanchored match still admits only the user named'],
  ['order', 'zoe', 'first-zoe', 0, 'the first entry that admits the user wins'],
  ['order', 'zoe', 'zoe', 1, 'an entry whose system matches but user does not passes to the next'],
  ['order', 'zoe', 'someone', null, 'entries after the last that matches are not implied'],
  ['order', 'zoe', 'everyone', 2, 'the last entry can still decide'],
  ['shapes', 'CN=alice,O=Example', 'cert_alice', 0, 'text around \\1 is kept'],
  ['shapes', 'CN=alice,O=Other', 'cert_alice', null, 'a DN of another organization does not match'],
  ['shapes', 'carol@partner', 'partnercarol', 1, 'a capture that took part is substituted'],
  ['shapes', 'aa', 'aa-\\1', 2, 'only the first \\1 is replaced, as in PostgreSQL'],
  ['shapes', 'aa', 'aa-aa', null, 'a second \\1 stays as written'],
  ['shapes', 'billing.svc', 'billing', 3, 'a named group is capture 1'],
  ['shapes', '😀-bot', 'bot-😀', 4, 'the u flag makes . take a whole astral character'],
  ['shapes', 'é-bot', 'bot-é', 4, 'a composed character is one character'],
  ['shapes', 'svc-report', 'service', 5, 'a regex without a capture maps to a literal user'],
  ['shapes', 'my-svc-report', 'service', null, 'an anchored regex without a capture refuses other names'],
];

function mapNamed(name: string): IdentMap {
  const map = table.maps.get(name);
  if (!map) throw new Error(`no map ${name} in the test file`);
  return map;
}

t.test(`the table holds at least ${MIN_ROWS} rows`, async (t) => {
  t.ok(ROWS.length >= MIN_ROWS, `${ROWS.length} rows`);
});

t.test('the test file loads without warnings, with its maps in order', async (t) => {
  t.same([...table.maps.keys()], ['literal', 'corp', 'order', 'shapes']);
  t.same(table.warnings, [
    'hba.yaml:5:30: maps.literal[2].user: "all" in quotes is the user named all, not the keyword; write all without quotes for the keyword',
    'hba.yaml:6:29: maps.literal[3].user: "+operators" in quotes is the user named +operators, not the group; write +operators without quotes for the group',
  ]);
});

t.test('each identity maps as PostgreSQL maps it', async (t) => {
  for (const [name, system, user, entry, why] of ROWS) {
    const map = mapNamed(name);
    const expected =
      entry === null ? { ok: false } : { ok: true, entry, line: map.entries[entry]?.source.line };
    t.same(mapIdentity(map, system, user, groupsOf), expected, `${why} (${name}: "${system}" as "${user}")`);
  }
});

t.test('a capture that did not take part fails the mapping, as in PostgreSQL', async (t) => {
  t.same(mapIdentity(mapNamed('shapes'), 'guest', 'partner', groupsOf), {
    ok: false,
    error:
      'regular expression "^(?:(.+)@partner|guest)$" has no subexpressions as requested by backreference in "partner\\1" (line 18)',
  });
  t.same(
    mapIdentity(mapNamed('shapes'), 'guest', 'service', groupsOf),
    mapIdentity(mapNamed('shapes'), 'guest', 'partner', groupsOf),
    'the error ends the search: later entries are not tried',
  );
});

t.test('a match names the entry by index and by its line in hba.yaml', async (t) => {
  t.same(mapIdentity(mapNamed('corp'), 'admin-1', 'x', groupsOf), { ok: true, entry: 2, line: 10 });
  t.same(mapNamed('corp').source, { file: 'hba.yaml', line: 7, column: 3 });
  t.same(mapNamed('shapes').entries[1]?.source, { file: 'hba.yaml', line: 18, column: 7 });
});

t.test('groups are looked up only when a +group entry is reached', async (t) => {
  const asked: string[] = [];
  const spy = (user: string) => {
    asked.push(user);
    return groupsOf(user);
  };
  mapIdentity(mapNamed('corp'), 'alice@example.com', 'alice', spy);
  mapIdentity(mapNamed('corp'), 'admin-1', 'erin', spy);
  t.same(asked, [], 'no +group entry matched these identities');
  mapIdentity(mapNamed('corp'), 'ops-robot', 'erin', spy);
  t.same(asked, ['erin']);
});

t.test('mapping keeps no state between calls (no lastIndex carried over)', async (t) => {
  const map = mapNamed('corp');
  for (let i = 0; i < 3; i++) {
    t.same(mapIdentity(map, 'alice@example.com', 'alice', groupsOf), { ok: true, entry: 0, line: 8 });
  }
});

t.test('entries keep their parsed shape, so logs can show what matched', async (t) => {
  const [first, second] = mapNamed('corp').entries;
  t.match(first, {
    system: { kind: 'regex', source: String.raw`^(.*)@example\.com$` },
    user: { kind: 'substitute', template: '\\1' },
    comment: undefined,
  });
  t.same(second?.user, { kind: 'group', group: 'operators' });
});
