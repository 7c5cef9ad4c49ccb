/** Which role a token grants an external user: only roles of the allow-list, first listed wins. */

import t from 'tap';
import { type ExternalUsers, grantedRole } from '../../../src/tokens/external-users.ts';

const mapped: ExternalUsers = {
  roles: ['analyst', 'engineer'],
  roleClaim: 'groups',
  roleMap: { 'corp-analysts': 'analyst', 'corp-eng': 'engineer' },
};
const direct: ExternalUsers = { roles: ['analyst', 'engineer'], roleClaim: 'roles', roleMap: null };

t.test('with a role_map, only mapped values count', async (t) => {
  t.equal(grantedRole({ groups: ['corp-eng', 'corp-analysts'] }, mapped), 'analyst', 'allow-list order');
  t.equal(grantedRole({ groups: 'corp-eng' }, mapped), 'engineer', 'one string');
  t.equal(grantedRole({ groups: ['analyst'] }, mapped), null, 'a role name itself is not mapped');
  t.equal(grantedRole({ groups: ['toString', '__proto__'] }, mapped), null, 'no inherited keys');
  t.equal(grantedRole({ groups: [1, null, { a: 1 }] }, mapped), null, 'non-strings are ignored');
  t.equal(grantedRole({}, mapped), null, 'no claim');
});

t.test('without one, claim values name allowed roles', async (t) => {
  t.equal(grantedRole({ roles: ['postgres', 'engineer'] }, direct), 'engineer');
  t.equal(grantedRole({ roles: ['postgres'] }, direct), null);
  t.equal(grantedRole({ groups: ['analyst'] }, direct), null, 'another claim');
});
