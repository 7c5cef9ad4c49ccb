import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { parseHbaText } from '../../../src/hba/parse.ts';
import { convertPgHba, type ImportProblem } from '../../../src/hba/pg-hba-import.ts';
import type { AddressPattern, HbaRule, NamePattern } from '../../../src/hba/rule.ts';
import { runPgward } from '../../helpers/pgward-cli.ts';

/** A name pattern as text: keywords bare, `name:x` for a literal name, `+g`, `/regex`. */
function describeName(pattern: NamePattern): string {
  if (pattern.kind === 'name') return `name:${pattern.value}`;
  if (pattern.kind === 'group') return `+${pattern.group}`;
  if (pattern.kind === 'regex') return `/${pattern.source}`;
  return pattern.kind;
}

function describeAddress(pattern: AddressPattern): string {
  return pattern.kind === 'cidr'
    ? `${pattern.range.network.toString()}/${pattern.range.prefix}`
    : pattern.kind;
}

/** What a rule does, in plain data: the options left at their defaults are omitted. */
function summary(rule: HbaRule) {
  const options = Object.fromEntries(
    Object.entries(rule.options).filter(([, value]) => value !== undefined && value !== false),
  );
  return {
    type: rule.type,
    databases: rule.databases.map(describeName),
    users: rule.users.map(describeName),
    addresses: rule.addresses?.map(describeAddress) ?? null,
    method: rule.method,
    options,
    comment: rule.comment,
  };
}

/**
 * Converts, then reads the YAML back with pgward's own parser (every method and option), with `maps`
 * (YAML for the ident maps, which the import leaves to be written by hand) appended.
 */
function roundTrip(text: string, maps = '') {
  const { yaml, problems } = convertPgHba('pg_hba.conf', text);
  const table = parseHbaText('hba.yaml', `${yaml}${maps}`);
  return { yaml, problems, rules: table.rules.map(summary), warnings: table.warnings };
}

const error = (line: number, message: string): ImportProblem => ({ line, message, severity: 'error' });
const warning = (line: number, message: string): ImportProblem => ({ line, message, severity: 'warning' });

const SAMPLE = `# PostgreSQL Client Authentication Configuration File
# ===================================================
#
# Refer to the "Client Authentication" section in the PostgreSQL
# documentation for a complete description of this file.
#
# This file controls: which hosts are allowed to connect, how clients
# are authenticated, which PostgreSQL user names they can use, which
# databases they can access.

# TYPE  DATABASE        USER            ADDRESS                 METHOD

# Database administrative login by Unix domain socket
local   all             postgres                                peer

# "local" is for Unix domain socket connections only
local   all             all                                     scram-sha-256
# IPv4 local connections:
host    all             all             127.0.0.1/32            scram-sha-256
# IPv6 local connections:
host    all             all             ::1/128                 scram-sha-256
# Allow replication connections from localhost, by a user with the
# replication privilege.
local   replication     all                                     scram-sha-256
host    replication     all             127.0.0.1/32            scram-sha-256
host    replication     all             ::1/128                 scram-sha-256

# The office network, written with a separate netmask.
host    sales,"reporting db"  +staff,alice  192.168.12.0  255.255.255.0  md5   # legacy clients
# Application roles, matched by regular expressions.
hostssl /^app_          /^svc_          10.0.0.0/8              scram-sha-256 \\
        clientcert=verify-full
# A database literally named "all", for a user literally named "replication".
hostssl "all"           "replication"   samenet                 scram-sha-256
# Certificate logins; the subject DN goes through the certmap ident map.
hostssl all             +certusers      0.0.0.0/0               cert clientname=DN map=certmap
host    all             legacy          10.20.0.0/16            password
hostnossl all           all             0.0.0.0/0               reject
`;

t.test(
  'a sample pg_hba.conf converts to YAML that pgward reads as PostgreSQL read the original',
  async (t) => {
    const { yaml, problems, rules, warnings } = roundTrip(
      SAMPLE,
      'maps:\n  certmap:\n    - { system: "/^CN=([^,]+),O=Example$", user: "\\\\1" }\n',
    );
    t.ok(
      yaml.startsWith(
        '# Converted from pg_hba.conf by pgward hba import\n# 12 rules converted, 1 line skipped\n',
      ),
      yaml,
    );
    t.same(problems, [
      error(
        14,
        'authentication method "peer" has no pgward equivalent (pgward has trust, reject, password, md5, scram-sha-256, cert, jwt, oauth, http, browser)',
      ),
      warning(
        36,
        'map "certmap" kept, but pg_ident.conf is not imported: hba.yaml loads only once its maps section defines certmap',
      ),
      warning(37, 'cleartext password over host rule kept with allow_cleartext: true; consider hostssl'),
    ]);
    const all = { databases: ['all'], users: ['all'], options: {} };
    t.same(rules, [
      {
        ...all,
        type: 'local',
        addresses: null,
        method: 'scram-sha-256',
        comment: '"local" is for Unix domain socket connections only',
      },
      {
        ...all,
        type: 'host',
        addresses: ['127.0.0.1/32'],
        method: 'scram-sha-256',
        comment: 'IPv4 local connections:',
      },
      {
        ...all,
        type: 'host',
        addresses: ['::1/128'],
        method: 'scram-sha-256',
        comment: 'IPv6 local connections:',
      },
      {
        ...all,
        databases: ['replication'],
        type: 'local',
        addresses: null,
        method: 'scram-sha-256',
        comment: 'Allow replication connections from localhost, by a user with the\nreplication privilege.',
      },
      {
        ...all,
        databases: ['replication'],
        type: 'host',
        addresses: ['127.0.0.1/32'],
        method: 'scram-sha-256',
        comment: undefined,
      },
      {
        ...all,
        databases: ['replication'],
        type: 'host',
        addresses: ['::1/128'],
        method: 'scram-sha-256',
        comment: undefined,
      },
      {
        type: 'host',
        databases: ['name:sales', 'name:reporting db'],
        users: ['+staff', 'name:alice'],
        addresses: ['192.168.12.0/24'],
        method: 'md5',
        options: {},
        comment: 'The office network, written with a separate netmask.\nlegacy clients',
      },
      {
        type: 'hostssl',
        databases: ['/^app_'],
        users: ['/^svc_'],
        addresses: ['10.0.0.0/8'],
        method: 'scram-sha-256',
        options: { clientcert: 'verify-full' },
        comment: 'Application roles, matched by regular expressions.',
      },
      {
        type: 'hostssl',
        databases: ['name:all'],
        users: ['name:replication'],
        addresses: ['samenet'],
        method: 'scram-sha-256',
        options: {},
        comment: 'A database literally named "all", for a user literally named "replication".',
      },
      {
        ...all,
        users: ['+certusers'],
        type: 'hostssl',
        addresses: ['0.0.0.0/0'],
        method: 'cert',
        options: { clientname: 'DN', map: 'certmap' },
        comment: 'Certificate logins; the subject DN goes through the certmap ident map.',
      },
      {
        ...all,
        users: ['name:legacy'],
        type: 'host',
        addresses: ['10.20.0.0/16'],
        method: 'password',
        options: { allowCleartext: true },
        comment: undefined,
      },
      { ...all, type: 'hostnossl', addresses: ['0.0.0.0/0'], method: 'reject', comment: undefined },
    ]);
    t.same(warnings, [
      'hba.yaml:65:15: rules[8].database: "all" in quotes is the database named all, not the keyword; write all without quotes for the keyword',
    ]);
  },
);

t.test('a left-out record leaves a comment where it was', async (t) => {
  const { yaml } = convertPgHba(
    'pg_hba.conf',
    'local all all trust\nlocal all all peer\nhost all all all trust\n',
  );
  t.match(
    yaml,
    '    method: trust\n\n  # line 2 not converted: authentication method "peer" has no pgward equivalent',
  );
  const last = convertPgHba('pg_hba.conf', 'local all all trust\nhost all all all ident\n').yaml;
  t.match(last, /\n# line 2 not converted: authentication method "ident"/);
});

t.test('an empty file gives an empty rule list', async (t) => {
  const { yaml, problems, rules } = roundTrip('# nothing here\n\n');
  t.match(yaml, '# 0 rules converted, 0 lines skipped\n');
  t.same(problems, []);
  t.same(rules, []);
});

t.test(
  'methods pgward does not have are errors that name the method, and the line is left out',
  async (t) => {
    const methods = [
      'ident',
      'peer',
      'gss',
      'sspi',
      'ldap ldapserver=ldap.example.com',
      'radius',
      'pam',
      'bsd',
    ];
    const { problems, rules } = roundTrip(methods.map((method) => `local all all ${method}\n`).join(''));
    t.same(
      problems.map((p) => [p.line, p.severity, p.message.split(' (')[0]]),
      ['ident', 'peer', 'gss', 'sspi', 'ldap', 'radius', 'pam', 'bsd'].map((name, i) => [
        i + 1,
        'error',
        `authentication method "${name}" has no pgward equivalent`,
      ]),
    );
    t.same(rules, []);
    t.same(roundTrip('\nlocal all all crypt\n').problems, [
      error(2, 'invalid authentication method "crypt"'),
    ]);
  },
);

t.test('oauth lines are left out with what to write by hand', async (t) => {
  const { problems } = roundTrip(
    'hostssl all all all oauth issuer=https://id.example.com scope=openid validator=libval\n',
  );
  t.same(problems, [
    error(
      1,
      'method "oauth" cannot be converted: its validator names a PostgreSQL server library, while ' +
        "pgward's names one of the token_validators in pgward.yaml; write this rule in hba.yaml by hand " +
        'with method: oauth, validator: <a token_validators name>, and the issuer and scope of this line',
    ),
  ]);
});

t.test('host names and domain suffixes are errors', async (t) => {
  const { problems, rules } = roundTrip(
    'host all all db.example.com trust\nhost all all .example.com trust\nhost all all "all" trust\n',
  );
  const hint = 'write an address, a CIDR, all, samehost or samenet';
  t.same(problems, [
    error(1, `host names are not supported ("db.example.com"); ${hint}`),
    error(2, `host names are not supported (".example.com"); ${hint}`),
    error(3, `host names are not supported ("all"); ${hint}`),
  ]);
  t.same(rules, []);
});

t.test('@file inclusions are errors; a quoted @name is a name', async (t) => {
  const { problems, rules } = roundTrip(
    'local @dbs.txt all trust\nlocal all bob,@admins trust\nlocal "@team" "@",@ trust\n',
  );
  t.same(problems, [
    error(1, '@file inclusion is not supported ("@dbs.txt"); list the names in hba.yaml instead'),
    error(2, '@file inclusion is not supported ("@admins"); list the names in hba.yaml instead'),
  ]);
  t.same(
    rules.map((r) => [r.databases, r.users]),
    [[['name:@team'], ['name:@', 'name:@']]],
  );
});

t.test('include directives are errors', async (t) => {
  const { problems } = roundTrip(
    'include other.conf\n\ninclude_if_exists maybe.conf\ninclude_dir conf.d\nlocal all all trust\n',
  );
  const message = 'include directives are not supported; import the included file separately';
  t.same(problems, [error(1, message), error(3, message), error(4, message)]);
});

t.test('hostgssenc lines are skipped with a warning; hostnogssenc becomes host', async (t) => {
  const { yaml, problems, rules } = roundTrip(
    'hostgssenc all all all trust\nhostnogssenc all all 10.0.0.0/8 scram-sha-256\n',
  );
  t.same(problems, [
    warning(1, 'hostgssenc rules never match in pgward, which refuses GSSAPI encryption; line skipped'),
    warning(2, 'hostnogssenc written as host: no pgward connection uses GSSAPI encryption'),
  ]);
  t.match(yaml, '# 1 rule converted, 1 line skipped\n');
  t.match(rules, [{ type: 'host', addresses: ['10.0.0.0/8'], method: 'scram-sha-256' }]);
});

t.test('password over host and hostnossl keeps allow_cleartext, with a warning', async (t) => {
  const { problems, rules } = roundTrip(
    [
      'host all all all password',
      'hostnossl all all all password',
      'hostnogssenc all all all password',
      'hostssl all all all password',
      'local all all password',
    ].join('\n'),
  );
  t.same(problems, [
    warning(1, 'cleartext password over host rule kept with allow_cleartext: true; consider hostssl'),
    warning(2, 'cleartext password over hostnossl rule kept with allow_cleartext: true; consider hostssl'),
    warning(3, 'hostnogssenc written as host: no pgward connection uses GSSAPI encryption'),
    warning(3, 'cleartext password over host rule kept with allow_cleartext: true; consider hostssl'),
  ]);
  t.same(
    rules.map((r) => r.options),
    [{ allowCleartext: true }, { allowCleartext: true }, { allowCleartext: true }, {}, {}],
  );
});

t.test('an address and a netmask become a CIDR; masks without one are errors', async (t) => {
  const { problems, rules } = roundTrip(
    [
      'host all all 10.1.0.0 255.255.0.0 trust',
      'host all all fd00:: ffff:ffff:: trust',
      'host all all 10.0.0.0 255.0.255.0 trust',
      'host all all 127.0.0.1 trust',
      'host all all 127.0.0.1',
      'host all all 10.0.0.0 ffff:: trust',
      'host all all 10.0.0.0/33 trust',
      'host all all 10.0.0 trust',
      'host all all 10.0.0.0/8,10.1.0.0/16 trust',
    ].join('\n'),
  );
  t.same(problems, [
    error(3, 'netmask 255.0.255.0 is not contiguous, so it has no CIDR equivalent'),
    error(4, 'invalid IP mask "trust"'),
    error(
      5,
      'end-of-line before netmask specification; write the address in CIDR notation or follow it with a netmask',
    ),
    error(6, 'IP address and mask do not match'),
    error(7, 'invalid CIDR mask in address "10.0.0.0/33"'),
    error(8, 'invalid IP address "10.0.0"'),
    error(9, 'multiple values specified for host address'),
  ]);
  t.same(
    rules.map((r) => r.addresses),
    [['10.1.0.0/16'], ['fd00::/32']],
  );
});

t.test('host bits PostgreSQL ignores are cleared, with a warning', async (t) => {
  const { problems, rules } = roundTrip(
    'host all all 10.1.2.3/8 trust\nhost all all 192.168.1.7 255.255.255.0 trust\n',
  );
  t.same(problems, [
    warning(1, '10.1.2.3/8 has host bits set, which PostgreSQL ignores; written as 10.0.0.0/8'),
    warning(2, '192.168.1.7/24 has host bits set, which PostgreSQL ignores; written as 192.168.1.0/24'),
  ]);
  t.same(
    rules.map((r) => r.addresses),
    [['10.0.0.0/8'], ['192.168.1.0/24']],
  );
});

t.test(
  'IPv4-compatible addresses stay IPv6; IPv4-mapped ranges, which never match, are errors',
  async (t) => {
    const { problems, rules } = roundTrip(
      'host all all ::10.0.0.1/128 trust\nhost all all ::ffff:10.0.0.0/104 trust\n',
    );
    t.same(problems, [
      error(
        2,
        '::ffff:10.0.0.0/104 is an IPv4-mapped range: it never matches a client (they are matched as IPv4)',
      ),
    ]);
    t.same(
      rules.map((r) => r.addresses),
      [['::a00:1/128']],
    );
  },
);

t.test('options are checked as PostgreSQL and pgward check them', async (t) => {
  const { problems, rules } = roundTrip(
    [
      'hostssl all all all md5 clientcert=1',
      'host all all all md5 clientcert=verify-ca',
      'host all all all cert',
      'hostssl all all all cert clientcert=verify-ca',
      'hostssl all all all scram-sha-256 clientname=CN',
      'local all all md5 map=users',
      'local all all md5 ldapserver=ldap.example.com',
      'local all all md5 verify',
      'hostssl all all all cert clientname=UID',
      'hostssl all mallory all reject clientcert=verify-ca',
      'hostssl all all all trust clientcert=verify-ca',
    ].join('\n'),
  );
  t.same(problems, [
    error(1, 'invalid value for clientcert: "1" (use verify-ca or verify-full)'),
    error(2, 'clientcert can only be configured for hostssl rules'),
    error(3, 'cert authentication is only supported on hostssl connections'),
    error(4, 'clientcert only accepts "verify-full" when using "cert" authentication'),
    error(5, 'option "clientname" does not apply to method "scram-sha-256" in pgward (it takes clientcert)'),
    error(6, 'option "map" does not apply to method "md5" in pgward (it takes clientcert)'),
    error(7, 'option "ldapserver" does not apply to method "md5" in pgward (it takes clientcert)'),
    error(8, 'authentication option not in name=value format: verify'),
    error(9, 'invalid value for clientname: "UID" (use CN or DN)'),
    warning(10, 'option "clientcert" has no effect on a reject rule; dropped'),
  ]);
  t.same(
    rules.map((r) => [r.method, r.options]),
    [
      ['reject', {}],
      ['trust', { clientcert: 'verify-ca' }],
    ],
  );
});

t.test('records that end early, or have a bad type, are errors', async (t) => {
  const { problems } = roundTrip(
    'local\nlocal all\nhost all all\nlocal all all\nhots all all all trust\nlocal,host all all trust\nlocal all all trust,md5\n',
  );
  t.same(problems, [
    error(1, 'end-of-line before database specification'),
    error(2, 'end-of-line before role specification'),
    error(3, 'end-of-line before IP address specification'),
    error(4, 'end-of-line before authentication method'),
    error(5, 'invalid connection type "hots"'),
    error(6, 'multiple values specified for connection type'),
    error(7, 'multiple values specified for authentication type'),
  ]);
});

t.test('regular expressions pgward cannot compile are errors', async (t) => {
  const { problems } = roundTrip('local /^[[:alpha:]]+$ all trust\nlocal all "/a(b" trust\n');
  const because = ", which uses JavaScript's syntax: Invalid regular expression: ";
  t.same(
    problems.map((p) => [p.line, p.message.slice(0, p.message.indexOf(because) + because.length)]),
    [
      [1, `regular expression "/^[[:alpha:]]+$" is not valid in pgward${because}`],
      [2, `regular expression "/a(b" is not valid in pgward${because}`],
    ],
  );
});

t.test('continued records report their first line, and later lines keep their numbers', async (t) => {
  const { problems, rules } = roundTrip(
    'host all \\\n  all \\\n  10.0.0.0/8 \\\n  trust\nlocal all all peer\nlocal all all trust # \\\n',
  );
  t.same(
    problems.map((p) => p.line),
    [5],
  );
  t.match(rules, [{ type: 'host', addresses: ['10.0.0.0/8'], method: 'trust' }, { type: 'local' }]);
});

t.test('names keep the meaning pg_hba.conf gave them, whatever YAML would make of them', async (t) => {
  const names = [
    '123',
    '1e3',
    'true',
    'no',
    'null',
    '~',
    '-x',
    '*x',
    '&x',
    '!x',
    '%x',
    '[x]',
    '{x}',
    '`x`',
    "'x",
  ];
  const quoted = ['a: b', 'a #b', 'two words', ' padded ', 'say "hi"', 'a,b', '#x', '+admins'];
  const pg = [...names, ...quoted.map((name) => `"${name.replaceAll('"', '""')}"`)].join(',');
  const { rules, yaml } = roundTrip(`local ${pg} ${pg} trust\n`);
  const expected = [...names, ...quoted].map((name) => `name:${name}`);
  t.same(rules[0]?.users, expected, yaml);
  t.same(rules[0]?.databases, expected, yaml);
});

t.test('keywords stay keywords only where pg_hba.conf has them, and only unquoted', async (t) => {
  const { rules } = roundTrip(
    [
      'local all,sameuser,samerole,samegroup,replication all trust',
      'local "all","sameuser","samerole","samegroup","replication" "all" trust',
      'local +db all,sameuser,samerole,samegroup,replication,+admins,"+ops" trust',
      'host all all samehost trust',
      'host all all "samenet" trust',
    ].join('\n'),
  );
  t.same(
    rules.map((r) => [r.databases, r.users, r.addresses]),
    [
      [['all', 'sameuser', 'samerole', 'samerole', 'replication'], ['all'], null],
      [
        ['name:all', 'name:sameuser', 'name:samerole', 'name:samegroup', 'name:replication'],
        ['name:all'],
        null,
      ],
      [
        ['name:+db'],
        [
          'all',
          'name:sameuser',
          'name:samerole',
          'name:samegroup',
          'name:replication',
          '+admins',
          'name:+ops',
        ],
        null,
      ],
      [['all'], ['all'], ['samehost']],
    ],
  );
});

t.test('regular expressions stay plain, in a block list when a flow list cannot hold them', async (t) => {
  const { yaml, rules } = roundTrip('local "/^(a|b),c$",/^d all trust\nlocal /^x,/^(y|z)$ +g,/^w trust\n');
  t.match(yaml, '    database:\n      - /^(a|b),c$\n      - /^d\n');
  t.match(yaml, '    database: [/^x, /^(y|z)$]\n    user: [+g, /^w]\n');
  t.same(
    rules.map((r) => [r.databases, r.users]),
    [
      [['/^(a|b),c$', '/^d'], ['all']],
      [
        ['/^x', '/^(y|z)$'],
        ['+g', '/^w'],
      ],
    ],
  );
  t.same(roundTrip('local "/^a #b" all trust\n').problems, [
    error(1, 'regular expression "/^a #b" cannot be written as a plain YAML scalar, which pgward needs'),
  ]);
});

t.test(
  'quoting rules follow PostgreSQL: "" inside quotes, quotes mid-token, commas and # inside quotes',
  async (t) => {
    const { rules } = roundTrip('local "a""b",x"y z"w,"c#d" "e,f" trust # "not a token\n');
    t.same(rules, [
      {
        type: 'local',
        databases: ['name:a"b', 'name:xy zw', 'name:c#d'],
        users: ['name:e,f'],
        addresses: null,
        method: 'trust',
        options: {},
        comment: '"not a token',
      },
    ]);
  },
);

t.test('comments: the block right above a record and its trailing comment; others are dropped', async (t) => {
  const { rules } = roundTrip(
    [
      '# header, dropped',
      '',
      '#',
      '#   indented',
      '#no space',
      '#',
      'local all a trust   # trailing',
      '# separated by a blank line, dropped',
      '',
      'local all b trust',
      '# above a skipped record, dropped with it',
      'local all c peer',
      'local all d trust',
    ].join('\n'),
  );
  t.same(
    rules.map((r) => r.comment),
    ['  indented\nno space\ntrailing', undefined, undefined],
  );
});

t.test('pgward hba import prints YAML on stdout and problems on stderr, exiting 1 on errors', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pgward-hba-import-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'pg_hba.conf');
  await writeFile(
    file,
    'local all all trust\nhost all all 10.0.0.0/8 ldap ldapserver=x\nhost all all all password\n',
  );
  const ran = await runPgward(['hba', 'import', file]);
  t.equal(ran.code, 1);
  t.equal(
    ran.stderr,
    `${file}:2: error: authentication method "ldap" has no pgward equivalent (pgward has trust, reject, password, md5, scram-sha-256, cert, jwt, oauth, http, browser)\n` +
      `${file}:3: warning: cleartext password over host rule kept with allow_cleartext: true; consider hostssl\n`,
  );
  t.match(parseHbaText('hba.yaml', ran.stdout).rules.map(summary), [
    { type: 'local', method: 'trust' },
    { type: 'host', method: 'password', options: { allowCleartext: true } },
  ]);
});
