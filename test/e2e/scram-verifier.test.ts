import pg from 'pg';
import t from 'tap';
import {
  createScramVerifier,
  formatScramVerifier,
  parseScramVerifier,
  verifyPasswordAgainstScram,
} from '../../src/auth/scram/verifier.ts';
import { startTestPostgres } from '../helpers/postgres.ts';

const upstream = await startTestPostgres(t);

t.test("PostgreSQL's own verifiers check out against the right password only", async (t) => {
  await upstream.query("create role made_by_pg login password 'pencil'");
  const { rows } = await upstream.query("select rolpassword from pg_authid where rolname = 'made_by_pg'");
  const verifier = parseScramVerifier(rows[0].rolpassword as string);
  t.ok(verifier, 'PostgreSQL stores SCRAM-SHA-256 verifiers pgward can read');
  if (!verifier) return;
  t.ok(await verifyPasswordAgainstScram('pencil', verifier));
  t.notOk(await verifyPasswordAgainstScram('Pencil', verifier));
});

t.test('verifiers pgward writes are accepted by PostgreSQL for a real login', async (t) => {
  const password = 'naïve pässword with spaces';
  const verifier = formatScramVerifier(await createScramVerifier(password));
  await upstream.query(`create role made_by_pgward login password '${verifier}'`);
  const { rows } = await upstream.query("select rolpassword from pg_authid where rolname = 'made_by_pgward'");
  t.equal(rows[0].rolpassword, verifier, 'stored as given, not re-hashed');
  const client = new pg.Client({
    host: upstream.host,
    port: upstream.port,
    user: 'made_by_pgward',
    password,
    database: 'postgres',
  });
  await client.connect();
  t.same((await client.query('select current_user as u')).rows, [{ u: 'made_by_pgward' }]);
  await client.end();
});
