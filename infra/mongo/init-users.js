// Run once by the mongo image on a fresh data directory (docker-entrypoint-initdb.d, as root,
// before the replica set exists): one user per service, each with readWrite on its own
// database and on the shared key store (<prefix>_auth: API keys, the server secret), nothing
// else; and the operator (the CLI, the demo), who reads every database and writes keys.
// Passwords: MONGO_PASSWORD_<SERVICE> (docker-compose.yml requires each one).
const prefix = process.env.DB_PREFIX || "lianchen";
const services = ["registry", "violations", "scoring", "restrictions", "notifications", "repair"];
const admin = db.getSiblingDB("admin");

function password(name) {
  const variable = `MONGO_PASSWORD_${name.toUpperCase()}`;
  const value = process.env[variable];
  if (!value) {
    throw new Error(`${variable} is not set`);
  }
  return value;
}

for (const service of services) {
  admin.createUser({
    user: `lianchen_${service}`,
    pwd: password(service),
    roles: [{ role: "readWrite", db: `${prefix}_${service}` },
            { role: "readWrite", db: `${prefix}_auth` }],
  });
}
admin.createUser({
  user: "lianchen_operator",
  pwd: password("operator"),
  roles: [{ role: "readWrite", db: `${prefix}_auth` }]
    .concat(services.map((service) => ({ role: "read", db: `${prefix}_${service}` }))),
});
