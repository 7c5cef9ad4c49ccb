import t from 'tap';
import { parseUsersText } from '../../../src/credentials/users-file.ts';
import { ConfigError } from '../../../src/errors/config-error.ts';

const FILE = '/etc/pgward/users.yaml';

t.test('a jwt binding is read with its optional claims', async (t) => {
  const users = parseUsersText(
    FILE,
    'users:\n  carol: { jwt: { validator: corp, iss: "https://idp", username: carol-ext } }\n',
    { validators: new Set(['corp']) },
  );
  t.same(users.find('carol')?.jwt, {
    validator: 'corp',
    iss: 'https://idp',
    username: 'carol-ext',
    aud: undefined,
  });
});

t.test('a binding naming an unknown validator, or none, is a located error', async (t) => {
  const problems = (text: string) => {
    try {
      parseUsersText(FILE, text, { validators: new Set(['corp']) });
      return [];
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      return error.message.split('\n');
    }
  };
  t.same(problems('users:\n  carol: { jwt: { validator: nope } }\n'), [
    `${FILE}:2:30: users.carol.jwt.validator: no token validator "nope" in pgward.yaml (token_validators) (defined: corp)`,
  ]);
  t.match(problems('users:\n  carol: { jwt: { iss: x } }\n'), [
    /users\.carol\.jwt: missing required key "validator"/,
  ]);
});

t.test(
  'findByToken: the user bound to an iss and username (CrateDB), which name one user only',
  async (t) => {
    const users = parseUsersText(
      FILE,
      'users:\n  carol: { jwt: { validator: corp, iss: "https://idp", username: carol-ext } }\n  dan: { jwt: { validator: corp, iss: "https://idp" } }\n',
      { validators: new Set(['corp']) },
    );
    t.equal(users.findByToken('https://idp', 'carol-ext')?.name, 'carol');
    t.equal(users.findByToken('https://other', 'carol-ext'), undefined);
    t.equal(users.findByToken('https://idp', 'dan'), undefined, 'a binding without username takes no part');
    t.throws(
      () =>
        parseUsersText(
          FILE,
          'users:\n  carol: { jwt: { validator: corp, iss: i, username: u } }\n  dan: { jwt: { validator: corp, iss: i, username: u } }\n',
          { validators: new Set(['corp']) },
        ),
      { message: `${FILE}:3:8: users.dan.jwt: iss and username are already bound to user "carol"` },
    );
  },
);
