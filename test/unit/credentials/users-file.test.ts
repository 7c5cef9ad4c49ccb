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
