import t from 'tap';
import { ConfigError } from '../../../src/errors/config-error.ts';
import { normalizeClientAddress, parseCidr } from '../../../src/hba/address.ts';
import { matchHbaRule } from '../../../src/hba/match.ts';
import { parseHbaText } from '../../../src/hba/parse.ts';
import type { ConnectionFacts } from '../../../src/hba/rule.ts';

const rules = parseHbaText(
  '/etc/pgward/hba.yaml',
  `rules:
  - { name: admin-local, type: hostssl, address: [127.0.0.1/32, "::1/128"], database: all, user: admin, method: password }
  - { name: no-bob, type: host, address: all, database: all, user: bob, method: reject }
  - { name: lan, type: host, address: 10.0.0.0/8, database: [app, reports], user: all, method: trust }
  - { name: v6, type: hostnossl, address: "fd00::/8", database: all, user: all, method: trust }
  - { name: repl, type: host, address: 10.1.0.0/16, database: replication, user: all, method: trust }
`,
).rules;

function facts(overrides: Partial<ConnectionFacts> & { from: string }): ConnectionFacts {
  const { from, ...rest } = overrides;
  return {
    transport: 'tcp',
    address: normalizeClientAddress(from),
    tls: false,
    protocol: 'pg',
    database: 'app',
    user: 'alice',
    replication: false,
    groups: new Set(),
    serverInterfaces: [],
    ...rest,
  };
}

const match = (f: ConnectionFacts) => matchHbaRule(rules, f)?.name ?? null;

t.test('first match wins, and each field narrows', async (t) => {
  t.equal(match(facts({ from: '127.0.0.1', user: 'admin', tls: true })), 'admin-local');
  t.equal(match(facts({ from: '127.0.0.1', user: 'admin', tls: false })), null, 'hostssl needs TLS');
  t.equal(match(facts({ from: '10.2.3.4', user: 'bob' })), 'no-bob', 'reject comes first for bob');
  t.equal(match(facts({ from: '10.2.3.4', database: 'reports' })), 'lan');
  t.equal(match(facts({ from: '10.2.3.4', database: 'other' })), null);
  t.equal(match(facts({ from: '11.0.0.1' })), null);
});

t.test('IPv4-mapped IPv6 clients match IPv4 rules; families never cross', async (t) => {
  t.equal(match(facts({ from: '::ffff:10.9.9.9' })), 'lan');
  t.equal(match(facts({ from: '::1', user: 'admin', tls: true })), 'admin-local');
  t.equal(match(facts({ from: 'fd00::5' })), 'v6');
  t.equal(match(facts({ from: 'fd00::5', tls: true })), null, 'hostnossl refuses TLS');
  const v4all = parseHbaText(
    'x.yaml',
    'rules:\n  - { type: host, address: 0.0.0.0/0, database: all, user: all, method: trust }\n',
  ).rules;
  t.equal(matchHbaRule(v4all, facts({ from: '2001:db8::1' })), null, '0.0.0.0/0 never matches IPv6');
});

t.test('physical replication matches only the replication keyword', async (t) => {
  t.equal(match(facts({ from: '10.1.2.3', replication: 'physical' })), 'repl');
  t.equal(match(facts({ from: '10.1.2.3', replication: 'logical', database: 'app' })), 'lan');
});

t.test('CIDRs with host bits set are refused with the network they meant', async (t) => {
  t.same(parseCidr('10.1.0.0/8'), {
    ok: false,
    message: '"10.1.0.0/8" has host bits set beyond /8; did you mean 10.0.0.0/8?',
  });
  t.match(parseCidr('10.0.0.0/33'), { ok: false, message: /invalid prefix length/ });
  t.match(parseCidr('1.2.3'), { ok: false, message: /invalid IP address/ });
  t.match(parseCidr('fd00::1/64'), { ok: false, message: /did you mean fd00::\/64/ });
});

t.test('rule errors carry file:line:column and the dotted path', async (t) => {
  const text = `rules:
  - type: host
    address: 10.1.0.0/8
    database: all
    user: all
    method: trust
  - type: hots
    database: all
    user: all
    method: password
    colour: blue
`;
  const error = (() => {
    try {
      parseHbaText('/etc/pgward/hba.yaml', text);
      return null;
    } catch (e) {
      return e;
    }
  })();
  t.ok(error instanceof ConfigError);
  t.same(
    (error as ConfigError).problems.map((p) => `${p.line}:${p.column} ${p.path}`),
    ['3:14 rules[0].address', '11:5 rules[1].colour', '7:11 rules[1].type'],
  );
});

t.test('cleartext password on a non-TLS rule needs allow_cleartext', async (t) => {
  t.throws(
    () =>
      parseHbaText(
        'h.yaml',
        'rules:\n  - { type: host, address: all, database: all, user: all, method: password }\n',
      ),
    /would accept secrets sent unencrypted/,
  );
  t.doesNotThrow(() =>
    parseHbaText(
      'h.yaml',
      'rules:\n  - { type: host, address: all, database: all, user: all, method: password, allow_cleartext: true }\n',
    ),
  );
});
