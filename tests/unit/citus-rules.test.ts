// Statements Citus can run (issue 16, ../shared/notes/citus.md "What stops tenfhir today"), checked in the source so
// that CI, which cannot build Citus, still fails on a statement the cluster would refuse. Read from src/**/*.ts (every
// string and template literal that holds SQL) and migrations/*.sql (function bodies included):
// - insert-select: an INSERT ... SELECT into a tenant table needs RETURNING or ON CONFLICT. Without either, Citus
//   evaluates the SELECT on the coordinator and COPYs the rows into the shards, which PostgreSQL refuses under
//   row-level security; with either, the rows go through intermediate results and an INSERT on each shard.
// - conflict-update: nothing but immutable expressions in ON CONFLICT ... DO UPDATE SET (and its WHERE): Citus
//   refuses now() and the like there, on distributed and reference tables alike. Put the value in VALUES and use
//   EXCLUDED.col.
// - stable-in-write: in an UPDATE (its SET and WHERE) or an INSERT's VALUES, no now() or other non-immutable
//   function inside CASE or COALESCE, and in an UPDATE no STABLE function over a column (timestamptz + interval,
//   make_interval(mins => col), date_trunc(..., col)). Citus evaluates the STABLE calls of a write once on the
//   coordinator and ships constants, so it refuses one whose evaluation depends on a row, on distributed, reference
//   and coordinator-local tables alike. Bind the time as a parameter, or choose the statement in code.
// - tenant-filter: every read, update or delete of a tenant table names the tenant itself (`tenant_id = $n`,
//   `tenant_id = ANY(...)`, or a join on tenant_id to a table that does): Citus routes by that predicate, never by the
//   row-level security policy.
// - insert-columns: an INSERT names its columns (the sp_* tables got a generated `seq`, migrations/0017) and, into a
//   tenant table, tenant_id among them.
// Tenant tables are the tables the migrations create with a tenant_id column. Exceptions live in ALLOWED below, each
// with its reason. Template placeholders (`${...}`) are followed to the literals they are built from (variables,
// functions of the same file, imports), so a condition built elsewhere counts; a table named by a placeholder is
// taken for a tenant table.
import { describe, expect, it } from '@jest/globals';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';

const ROOT = new URL('../../', import.meta.url).pathname;

type Rule = 'insert-select' | 'conflict-update' | 'stable-in-write' | 'tenant-filter' | 'insert-columns';

interface Finding {
  file: string;
  line: number;
  rule: Rule;
  message: string;
}

/** Tables with a tenant_id column that Citus keeps whole on every node (reference tables): not routed by tenant. */
const REFERENCE_TABLES_WITH_TENANT_ID: Record<string, string> = {
  oauth_client: 'found by client_id at the token endpoint before any tenant is known; a small reference table',
};

/** Statements allowed to break a rule: the file, a piece of the statement's text, the rule, and why. */
const ALLOWED: { file: string; contains: string; rule: Rule; reason: string }[] = [
  {
    file: 'migrations/0006_subscriptions.sql',
    contains: 'FROM public.outbox o ORDER BY o.tenant_id LIMIT 1',
    rule: 'tenant-filter',
    reason: 'outbox_tenants() lists which tenants have events, across all of them: a multi-shard scan on purpose, a few per poll',
  },
  {
    file: 'migrations/0006_subscriptions.sql',
    contains: 'FROM public.subscription_state s WHERE s.status',
    rule: 'tenant-filter',
    reason: 'subscription_tenants() lists which tenants have live subscriptions, across all of them: a multi-shard scan on purpose',
  },
  {
    file: 'src/store/citus.ts',
    contains: 'SELECT DISTINCT o.tenant_id FROM public.outbox o',
    rule: 'tenant-filter',
    reason: "outbox_tenants() as Citus runs it (no recursive CTE there): the same scan across all tenants, on purpose",
  },
];

// --- SQL text ------------------------------------------------------------------------------------------------------

/** What a template placeholder becomes in the checked text. */
const HOLE = '$_';

/**
 * `sql` with comments and the insides of string constants blanked (so their words are never read as SQL), every
 * character in its place (so offsets still give lines).
 */
function stripSql(sql: string): string {
  const blank = (t: string) => t.replace(/[^\n]/g, ' ');
  return sql
    .replace(/--[^\n]*/g, blank)
    .replace(/([Ee]?')((?:\\.|''|[^'\\])*)'/g, (_, open: string, inside: string) => `${open}${blank(inside)}'`);
}

/** Where the parenthesised group around `at` ends (or the text does): the extent of a CTE or a sub-statement. */
function groupEnd(sql: string, at: number): number {
  let depth = 0;
  for (let i = at; i < sql.length; i++) {
    if (sql[i] === '(') depth++;
    else if (sql[i] === ')' && --depth < 0) return i;
    else if (sql[i] === ';' && depth === 0) return i;
  }
  return sql.length;
}

const ALIAS_STOP = new Set(
  'WHERE SET ON JOIN LEFT RIGHT INNER OUTER CROSS FULL NATURAL USING GROUP ORDER LIMIT OFFSET UNION EXCEPT INTERSECT RETURNING FOR WINDOW HAVING TABLESAMPLE VALUES SELECT DEFAULT WITH AND OR LATERAL'.split(' '),
);

const NOT_IMMUTABLE = [
  'now', 'clock_timestamp', 'statement_timestamp', 'transaction_timestamp', 'timeofday', 'random', 'gen_random_uuid',
  'uuid_generate_v1', 'uuid_generate_v4', 'nextval', 'currval', 'lastval', 'setval', 'current_setting', 'set_config',
  'txid_current', 'pg_current_xact_id', 'age', 'to_char', 'to_timestamp', 'date_trunc', 'pg_notify',
];
const NOT_IMMUTABLE_CALL = new RegExp(`\\b(${NOT_IMMUTABLE.join('|')})\\s*\\(`, 'i');
// SQL's value keywords, and timestamptz ± interval (a STABLE operator: it depends on the time zone)
const NOT_IMMUTABLE_WORD = /\b(current_timestamp|current_date|current_time|localtime|localtimestamp|current_user|session_user|interval)\b/i;

interface SqlContext {
  /** Tables routed by tenant_id (tenant tables, reference tables left out). */
  tenantTables: Set<string>;
  /** Text in which a tenant condition for this statement may also be found (what its placeholders are built from). */
  reached?: string;
  /** Migration SQL: a PL/pgSQL variable may carry the tenant (`tenant_id = t`). */
  plpgsql?: boolean;
}

/** The rules `sql` breaks, each with the character offset it was found at. */
function checkSql(raw: string, ctx: SqlContext): { at: number; rule: Rule; message: string }[] {
  const sql = stripSql(raw);
  const out: { at: number; rule: Rule; message: string }[] = [];
  const isTenant = (name: string) => name.includes(HOLE) || ctx.tenantTables.has(name.toLowerCase());

  for (const m of sql.matchAll(/\bINSERT\s+INTO\s+("?\$_"?|[A-Za-z_][\w.]*)(?![\w.])(?:\s+AS\s+\w+)?\s*(\()?/gi)) {
    const table = m[1].replace(/^public\./, '');
    const end = groupEnd(sql, m.index!);
    const body = sql.slice(m.index!, end);
    let rest = body.slice(m[0].length);
    if (!m[2]) {
      out.push({ at: m.index!, rule: 'insert-columns', message: `INSERT INTO ${table} does not name its columns` });
    } else {
      const close = groupEnd(rest, 0);
      const cols = rest.slice(0, close);
      rest = rest.slice(close + 1);
      if (isTenant(table) && !/\btenant_id\b/.test(cols) && !cols.includes(HOLE)) {
        out.push({ at: m.index!, rule: 'insert-columns', message: `INSERT INTO ${table} does not name tenant_id` });
      }
    }
    const fromSelect = /^\s*(\(|SELECT\b|WITH\b)/i.test(rest);
    if (fromSelect && isTenant(table) && !/\bRETURNING\b|\bON\s+CONFLICT\b/i.test(rest)) {
      out.push({ at: m.index!, rule: 'insert-select', message: `INSERT INTO ${table} ... SELECT without RETURNING or ON CONFLICT (Citus would COPY into RLS shards)` });
    }
  }

  for (const m of sql.matchAll(/\bDO\s+UPDATE\s+SET\b/gi)) {
    const region = sql.slice(m.index!, groupEnd(sql, m.index!));
    const bad = NOT_IMMUTABLE_CALL.exec(region) ?? NOT_IMMUTABLE_WORD.exec(region);
    if (bad) out.push({ at: m.index!, rule: 'conflict-update', message: `${bad[0].replace(/\s*\($/, '()')} in ON CONFLICT ... DO UPDATE (Citus allows immutable expressions only: use EXCLUDED.col)` });
  }

  out.push(...stableInWrite(sql));

  const refs = [...sql.matchAll(/(?<!\bDISTINCT\s+)(?<!\b(?:FOR|DO|KEY)\s+)\b(FROM|JOIN|UPDATE)\s+(?:ONLY\s+)?("?\$_"?|[A-Za-z_][\w.]*)(?![\w.])(?!\s*\()(?:\s+(?:AS\s+)?("?\$_"?|[A-Za-z_]\w*))?/gi)];
  // `CREATE STATISTICS ... FROM t` names a table and reads none of its rows
  const ddl = (at: number) => /^\s*CREATE\s+STATISTICS\b/i.test(sql.slice(sql.lastIndexOf(';', at) + 1, at));
  const routed = refs.filter((m) => isTenant(m[2].replace(/^public\./, '')) && !ddl(m.index!));
  const text = `${sql}\n${ctx.reached ?? ''}`;
  for (const m of routed) {
    const table = m[2].replace(/^public\./, '');
    const alias = m[3] && !ALIAS_STOP.has(m[3].toUpperCase()) ? m[3] : undefined;
    if (!hasTenantCondition(text, table, alias, routed.length === 1, ctx.plpgsql === true)) {
      out.push({ at: m.index!, rule: 'tenant-filter', message: `${table}${alias ? ` ${alias}` : ''} is read without tenant_id = $n (Citus cannot route it)` });
    }
  }
  return out;
}

// timestamptz ± interval is STABLE: make_interval(...) beside a time is as suspect as the interval keyword
const MUTABLE_MARK = new RegExp(`${NOT_IMMUTABLE_CALL.source}|${NOT_IMMUTABLE_WORD.source}|\\bmake_interval\\s*\\(`, 'i');
const WORDS_NOT_COLUMNS = new Set('AND OR NOT NULL TRUE FALSE IS IN AS INTERVAL CASE WHEN THEN ELSE END DISTINCT FROM'.split(' '));

/** Whether an expression's text reads a column: a bare or qualified name that is no parameter, type, keyword or call. */
function readsColumn(expr: string): boolean {
  const rest = expr
    .replace(/'[^']*'/g, ' ')
    .replace(/\b\w+\s*=>/g, ' ')
    .replace(/::\s*\w+(\s*\[\])?/g, ' ')
    .replace(/\$(\d+|_)/g, ' ');
  return [...rest.matchAll(/\b([A-Za-z_][\w.]*)\b(?!\s*\()/g)].some((m) => !WORDS_NOT_COLUMNS.has(m[1].toUpperCase()));
}

/** Where the CASE at `at` ends (after its matching END), nested CASEs included. */
function caseEnd(sql: string, at: number): number {
  const word = /\b(CASE|END)\b/gi;
  word.lastIndex = at;
  let depth = 0;
  for (let m = word.exec(sql); m; m = word.exec(sql)) {
    depth += m[1].toUpperCase() === 'CASE' ? 1 : -1;
    if (depth === 0) return word.lastIndex;
  }
  return sql.length;
}

/** The stable-in-write findings of `sql` (see the file's head). */
function stableInWrite(sql: string): { at: number; rule: Rule; message: string }[] {
  const out: { at: number; rule: Rule; message: string }[] = [];
  const regions: { at: number; text: string; update: boolean }[] = [];
  for (const m of sql.matchAll(/(?<!\b(?:FOR|DO|KEY|NO)\s+)\bUPDATE\s+(?:ONLY\s+)?[A-Za-z_"$][\w.$"]*(?:\s+(?:AS\s+)?\w+)?\s+SET\b/gi)) {
    regions.push({ at: m.index!, text: sql.slice(m.index!, groupEnd(sql, m.index!)), update: true });
  }
  for (const m of sql.matchAll(/\bINSERT\s+INTO\b/gi)) {
    const body = sql.slice(m.index!, groupEnd(sql, m.index!));
    const values = /\)\s*VALUES\b/i.exec(body);
    if (values) regions.push({ at: m.index!, text: body.slice(values.index).split(/\bON\s+CONFLICT\b/i)[0], update: false });
  }
  for (const r of regions) {
    const wrapped: string[] = [];
    for (const m of r.text.matchAll(/\bCASE\b/gi)) wrapped.push(r.text.slice(m.index!, caseEnd(r.text, m.index!)));
    for (const m of r.text.matchAll(/\bcoalesce\s*\(/gi)) wrapped.push(r.text.slice(m.index!, m.index! + m[0].length + groupEnd(r.text.slice(m.index! + m[0].length), 0)));
    const bad = wrapped.map((w) => MUTABLE_MARK.exec(w)).find((x) => x);
    if (bad) {
      out.push({ at: r.at, rule: 'stable-in-write', message: `${bad[0].replace(/\s*\($/, '()')} inside CASE or COALESCE in a write (Citus allows immutable expressions only there: bind the value as a parameter)` });
      continue;
    }
    if (!r.update) continue;
    const calls = [...r.text.matchAll(new RegExp(`${NOT_IMMUTABLE_CALL.source}|\\bmake_interval\\s*\\(`, 'gi'))].map((m) => {
      const from = m.index! + m[0].length;
      return { name: m[0], args: r.text.slice(from, from + groupEnd(r.text.slice(from), 0)) };
    });
    // to_timestamp(float8) is immutable; to_timestamp(text, format) is not
    const overColumn = calls.find((c) => readsColumn(c.args) && !(/^to_timestamp/i.test(c.name) && !c.args.includes(',')));
    // a column added to or taken from an interval (timestamptz_pl_interval is STABLE)
    const arith = /\b(?!interval\b)[A-Za-z_][\w.]*\s*[-+]\s*(?:interval\b|make_interval\s*\()|(?:\binterval\s*'[^']*'|\bmake_interval\s*\([^()]*\))\s*[-+]\s*(?!\$)[A-Za-z_]/i.exec(r.text);
    if (overColumn || (arith && readsColumn(arith[0].replace(/\bmake_interval\s*\([^()]*\)?/gi, ' ')))) {
      const what = overColumn ? `${overColumn.name.replace(/\s*\($/, '')}() over a column` : 'a column plus or minus an interval';
      out.push({ at: r.at, rule: 'stable-in-write', message: `${what} in an UPDATE (Citus evaluates STABLE functions on the coordinator, never per row: bind the value or use an immutable form)` });
    }
  }
  return out;
}

const escape = (s: string) => s.replace(/[$.*+?^(){}[\]|\\"]/g, '\\$&');

/** Whether `text` names the tenant of `table` (as `alias`): an equality on a parameter, ANY(...), or a join on tenant_id. */
function hasTenantCondition(text: string, table: string, alias: string | undefined, alone: boolean, plpgsql: boolean): boolean {
  const unknown = (alias ?? table).includes(HOLE);
  // a placeholder's alias may be any alias, this one too
  const q = unknown ? `(?:\\w+|\\$_)` : `(?:${escape(alias ?? table)}|\\$_)`;
  const value = `(?:\\$\\d+|\\$_|ANY\\s*\\(|(?:\\w+|\\$_)\\.tenant_id\\b${plpgsql ? '|[a-z_]\\w*\\b' : ''})`;
  const patterns = [
    `(?<![\\w$])${q}\\.tenant_id\\s*(?:=\\s*${value}|IN\\s*\\()`,
    `(?:\\w+|\\$_)\\.tenant_id\\s*=\\s*${q}\\.tenant_id\\b`,
    `\\(\\s*${q}\\.tenant_id\\s*,[^()]*\\)\\s*IN\\s*\\(`,
  ];
  if (!alias || alone || unknown) patterns.push(`(?<![\\w.$])tenant_id\\s*(?:=\\s*${value}|IN\\s*\\()`);
  return patterns.some((p) => new RegExp(p, 'i').test(text));
}

// --- the tables, from the migrations --------------------------------------------------------------------------------

function migrationFiles(): string[] {
  const dir = join(ROOT, 'migrations');
  return readdirSync(dir)
    .filter((f) => /^\d{4}_.*\.sql$/.test(f))
    .sort()
    .map((f) => join(dir, f));
}

/** Tables the migrations create with (or later give) a tenant_id column. */
function tenantTablesFromMigrations(): Set<string> {
  const out = new Set<string>();
  for (const file of migrationFiles()) {
    const sql = stripSql(readFileSync(file, 'utf8'));
    for (const m of sql.matchAll(/\bCREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?([A-Za-z_][\w.]*)\s*\(/gi)) {
      const start = m.index! + m[0].length;
      const body = sql.slice(start, groupEnd(sql, start));
      if (/(^|,)\s*tenant_id\s/.test(body)) out.add(m[1].replace(/^public\./, '').toLowerCase());
    }
    for (const m of sql.matchAll(/\bALTER\s+TABLE\s+([A-Za-z_][\w.]*)\s+ADD\s+(?:COLUMN\s+)?tenant_id\b/gi)) out.add(m[1].toLowerCase());
  }
  return out;
}

// --- SQL in migrations ----------------------------------------------------------------------------------------------

/** The statements of a migration, with their offsets: top-level ones, and those of every $tag$-quoted body. */
function migrationStatements(sql: string, base = 0): { at: number; text: string }[] {
  const out: { at: number; text: string }[] = [];
  // the statement's own text, with its quoted bodies blanked (they are statements of their own)
  let own = sql;
  let start = 0;
  let i = 0;
  const flush = (end: number) => {
    const text = own.slice(start, end);
    if (text.trim()) out.push({ at: base + start, text });
  };
  while (i < sql.length) {
    if (sql.startsWith('--', i)) {
      i = sql.indexOf('\n', i) < 0 ? sql.length : sql.indexOf('\n', i);
    } else if (sql[i] === "'") {
      i = sql.indexOf("'", i + 1) + 1 || sql.length;
    } else if (sql[i] === '$' && /^\$[A-Za-z_]*\$/.test(sql.slice(i))) {
      const tag = /^\$[A-Za-z_]*\$/.exec(sql.slice(i))![0];
      const close = sql.indexOf(tag, i + tag.length);
      const end = close < 0 ? sql.length : close;
      out.push(...migrationStatements(sql.slice(i + tag.length, end), base + i + tag.length));
      own = own.slice(0, i + tag.length) + own.slice(i + tag.length, end).replace(/[^\n]/g, ' ') + own.slice(end);
      i = end + tag.length;
    } else if (sql[i] === ';') {
      flush(i);
      start = ++i;
    } else i++;
  }
  flush(sql.length);
  return out;
}

// --- SQL in the TypeScript sources ----------------------------------------------------------------------------------

type Literal = ts.StringLiteral | ts.NoSubstitutionTemplateLiteral | ts.TemplateExpression;

const isLiteral = (n: ts.Node): n is Literal => ts.isStringLiteral(n) || ts.isNoSubstitutionTemplateLiteral(n) || ts.isTemplateExpression(n);

/** A literal's text, each placeholder written as HOLE. */
function literalText(n: Literal): string {
  if (!ts.isTemplateExpression(n)) return n.text;
  return n.head.text + n.templateSpans.map((s) => HOLE + s.literal.text).join('');
}

/** SQL as this code base writes it (keywords in capitals), or a statement in lower case. */
const looksLikeSql = (s: string) => /\b(SELECT|INSERT INTO|UPDATE|DELETE FROM|FROM|JOIN)\b/.test(s) || /^\s*\(?\s*(select|insert|update|delete|with)\s/i.test(s);

/** The parsed sources of src/, by absolute path (so imports can be followed). */
class Sources {
  readonly files = new Map<string, ts.SourceFile>();

  constructor(paths: string[], read: (p: string) => string = (p) => readFileSync(p, 'utf8')) {
    for (const p of paths) this.files.set(p, ts.createSourceFile(p, read(p), ts.ScriptTarget.ES2022, true, ts.ScriptKind.TS));
  }

  /** Every literal that holds SQL, with the text its placeholders lead to (depth-limited). */
  *literals(): Generator<{ file: string; line: number; text: string; reached: string }> {
    for (const [path, sf] of this.files) {
      const found: Literal[] = [];
      const visit = (n: ts.Node): void => {
        if (isLiteral(n) && looksLikeSql(literalText(n)) && !ts.isImportDeclaration(n.parent) && !ts.isExportDeclaration(n.parent)) found.push(n);
        ts.forEachChild(n, visit);
      };
      visit(sf);
      for (const n of found) {
        const reached = ts.isTemplateExpression(n) ? n.templateSpans.map((s) => this.reach(s.expression, 4)) : [];
        yield { file: path, line: sf.getLineAndCharacterOfPosition(n.getStart()).line + 1, text: this.inlined(n), reached: [...reached, ...this.users(sf, n)].join('\n') };
      }
    }
  }

  private readonly reached = new Map<ts.Node, string[]>();

  /**
   * The literal text an expression is built from: its own literals, and (`depth` steps deep) those of what its
   * identifiers name. Each step lowers the depth, so cycles end.
   */
  reach(node: ts.Node, depth: number): string {
    const memo = this.reached.get(node) ?? [];
    this.reached.set(node, memo);
    if (memo[depth] !== undefined) return memo[depth];
    const texts: string[] = [];
    const visit = (n: ts.Node): void => {
      if (isLiteral(n)) texts.push(literalText(n));
      if (ts.isIdentifier(n) && depth > 0 && !(ts.isPropertyAccessExpression(n.parent) && n.parent.name === n)) {
        for (const d of this.declarations(n)) texts.push(this.reach(d, depth - 1));
      }
      ts.forEachChild(n, visit);
    };
    visit(node);
    return (memo[depth] = [...new Set(texts)].join('\n'));
  }

  /** A literal's text with each placeholder that names a constant string (`${ROUTED_INSERT}`) written out. */
  private inlined(n: Literal): string {
    if (!ts.isTemplateExpression(n)) return n.text;
    const constant = (e: ts.Expression): string | undefined => {
      if (!ts.isIdentifier(e)) return undefined;
      const d = this.declarations(e);
      return d.length === 1 && (ts.isStringLiteral(d[0]) || ts.isNoSubstitutionTemplateLiteral(d[0])) ? d[0].text : undefined;
    };
    return n.head.text + n.templateSpans.map((s) => (constant(s.expression) ?? HOLE) + s.literal.text).join('');
  }

  /** For a fragment kept in a constant (`const SELECT_USER = \`SELECT ... FROM app_user u\``), the statements that use it. */
  private users(sf: ts.SourceFile, n: Literal): string[] {
    const decl = n.parent;
    if (!ts.isVariableDeclaration(decl) || !ts.isIdentifier(decl.name)) return [];
    const name = decl.name.text;
    const out: string[] = [];
    const visit = (x: ts.Node): void => {
      if (ts.isTemplateExpression(x) && x.templateSpans.some((s) => ts.isIdentifier(s.expression) && s.expression.text === name)) out.push(literalText(x));
      ts.forEachChild(x, visit);
    };
    visit(sf);
    return out;
  }

  /** What an identifier names, as the nodes whose text counts: initialisers, pushes and assignments, function bodies. */
  private declarations(id: ts.Identifier): ts.Node[] {
    const name = id.text;
    for (let scope: ts.Node | undefined = id.parent; scope; scope = scope.parent) {
      if (!ts.isFunctionLike(scope) && !ts.isSourceFile(scope)) continue;
      // a parameter: its value comes from the callers (unknown here), whatever outer name it hides
      if (ts.isFunctionLike(scope) && scope.parameters.some((p) => bindsName(p.name, name))) return [];
      const found = this.declaredIn(scope, name);
      if (found.length) return found;
      if (ts.isSourceFile(scope)) return this.imported(scope, name);
    }
    return [];
  }

  private declaredIn(scope: ts.Node, name: string): ts.Node[] {
    const out: ts.Node[] = [];
    const visit = (n: ts.Node): void => {
      if (n !== scope && ts.isFunctionLike(n)) {
        if (ts.isFunctionDeclaration(n) && n.name?.text === name && n.body) out.push(n.body);
        return;
      }
      if (ts.isVariableDeclaration(n) && n.initializer && bindsName(n.name, name)) out.push(n.initializer);
      if (ts.isCallExpression(n) && ts.isPropertyAccessExpression(n.expression) && rootName(n.expression.expression) === name) out.push(...n.arguments);
      if (ts.isBinaryExpression(n) && n.operatorToken.kind === ts.SyntaxKind.EqualsToken && rootName(n.left) === name) out.push(n.right);
      ts.forEachChild(n, visit);
    };
    ts.forEachChild(scope, visit);
    return out;
  }

  private imported(sf: ts.SourceFile, name: string): ts.Node[] {
    for (const st of sf.statements) {
      if (!ts.isImportDeclaration(st) || !ts.isStringLiteral(st.moduleSpecifier) || !st.moduleSpecifier.text.startsWith('.')) continue;
      const names = st.importClause?.namedBindings;
      if (!names || !ts.isNamedImports(names) || !names.elements.some((e) => e.name.text === name)) continue;
      const target = this.files.get(resolve(dirname(sf.fileName), st.moduleSpecifier.text.replace(/\.js$/, '.ts')));
      return target ? this.declaredIn(target, name) : [];
    }
    return [];
  }
}

function bindsName(b: ts.BindingName, name: string): boolean {
  if (ts.isIdentifier(b)) return b.text === name;
  return b.elements.some((e) => !ts.isOmittedExpression(e) && bindsName(e.name, name));
}

function rootName(e: ts.Expression): string | undefined {
  while (ts.isPropertyAccessExpression(e) || ts.isElementAccessExpression(e)) e = e.expression;
  return ts.isIdentifier(e) ? e.text : undefined;
}

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => (statSync(join(dir, f)).isDirectory() ? tsFiles(join(dir, f)) : f.endsWith('.ts') ? [join(dir, f)] : []));
}

// --- the whole project ------------------------------------------------------------------------------------------------

function lineAt(text: string, at: number): number {
  return text.slice(0, at).split('\n').length;
}

/** Every finding in the sources and migrations, and which ALLOWED entries were used. */
function scan(sources: Sources, migrations: { file: string; sql: string }[], tenantTables: Set<string>): { findings: Finding[]; used: Set<number> } {
  const findings: Finding[] = [];
  const used = new Set<number>();
  const routed = new Set([...tenantTables].filter((t) => !(t in REFERENCE_TABLES_WITH_TENANT_ID)));
  const report = (file: string, line: number, text: string, f: { rule: Rule; message: string }) => {
    const allowed = ALLOWED.findIndex((a) => a.file === file && a.rule === f.rule && text.includes(a.contains));
    if (allowed >= 0) used.add(allowed);
    else findings.push({ file, line, ...f });
  };
  for (const lit of sources.literals()) {
    const file = relative(ROOT, lit.file);
    for (const f of checkSql(lit.text, { tenantTables: routed, reached: stripSql(lit.reached) })) report(file, lit.line, lit.text, f);
  }
  for (const m of migrations) {
    for (const st of migrationStatements(m.sql)) {
      for (const f of checkSql(st.text, { tenantTables: routed, plpgsql: true })) report(m.file, lineAt(m.sql, st.at + f.at), st.text, f);
    }
  }
  return { findings, used };
}

const show = (f: Finding) => `${f.file}:${f.line} ${f.rule}: ${f.message}`;

describe('SQL that Citus can route and run (issue 16)', () => {
  const tenantTables = tenantTablesFromMigrations();

  it('finds the tenant tables in the migrations', () => {
    for (const t of ['resource', 'resource_history', 'sp_token', 'sp_fulltext', 'outbox', 'audit_event', 'job', 'app_user', 'oauth_client']) {
      expect(tenantTables).toContain(t);
    }
    for (const t of ['tenant', 'plan', 'oidc_payload', 'signing_key', 'tenant_erasure']) expect(tenantTables).not.toContain(t);
  });

  it('no statement in src/ or migrations/ breaks a rule (exceptions: ALLOWED, each with its reason)', () => {
    const sources = new Sources(tsFiles(join(ROOT, 'src')));
    const migrations = migrationFiles().map((f) => ({ file: relative(ROOT, f), sql: readFileSync(f, 'utf8') }));
    const { findings, used } = scan(sources, migrations, tenantTables);
    expect(findings.map(show)).toEqual([]);
    // an exception that no longer matches anything goes
    expect(ALLOWED.filter((_, i) => !used.has(i)).map((a) => `${a.file}: ${a.contains}`)).toEqual([]);
  });

  describe('the checker flags what Citus refuses', () => {
    const ctx = { tenantTables: new Set(['resource', 'sp_token', 'outbox', 'subscription_state']) };
    const rules = (sql: string, more: Partial<SqlContext> = {}) => checkSql(sql, { ...ctx, ...more }).map((f) => f.rule);

    it('INSERT ... SELECT into a tenant table, unless it returns rows or handles conflicts', () => {
      const bare = `INSERT INTO sp_token (tenant_id, resource_type, resource_id, code, system, value) SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[])`;
      expect(rules(bare)).toEqual(['insert-select']);
      expect(rules(`${bare} RETURNING 1`)).toEqual([]);
      expect(rules(`WITH ob AS (INSERT INTO outbox (tenant_id, resource_id) SELECT $1, i FROM unnest($2::text[]) AS u(i)) SELECT 1`)).toEqual(['insert-select']);
      expect(rules(`WITH ob AS (INSERT INTO outbox (tenant_id, resource_id) SELECT $1, i FROM unnest($2::text[]) AS u(i) RETURNING 1) SELECT 1`)).toEqual([]);
      expect(rules(`INSERT INTO resource (tenant_id, id) SELECT $1, i FROM unnest($2::text[]) AS u(i) ON CONFLICT DO NOTHING`)).toEqual([]);
      expect(rules(`INSERT INTO outbox (tenant_id, resource_id) VALUES ($1, $2), ($1, $3)`)).toEqual([]);
      expect(rules(`INSERT INTO ${HOLE} (tenant_id, code) SELECT $1, * FROM unnest($2::text[])`)).toEqual(['insert-select']);
      // not a tenant table: no row-level security on its shards
      expect(rules(`INSERT INTO plan (id, name) SELECT $1, $2`)).toEqual([]);
    });

    it('a function that is not immutable in ON CONFLICT ... DO UPDATE', () => {
      expect(rules(`INSERT INTO oauth_client (client_id, metadata) VALUES ($1, $2) ON CONFLICT (client_id) DO UPDATE SET metadata = EXCLUDED.metadata, updated_at = now()`)).toEqual(['conflict-update']);
      expect(rules(`INSERT INTO plan (id, name) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name WHERE plan.updated_at < CURRENT_TIMESTAMP`)).toEqual(['conflict-update']);
      expect(rules(`INSERT INTO plan (id, until) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET until = EXCLUDED.until + interval '1 day'`)).toEqual(['conflict-update']);
      expect(rules(`INSERT INTO plan (id, name, updated_at) VALUES ($1, $2, now()) ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, updated_at = EXCLUDED.updated_at`)).toEqual([]);
      expect(rules(`INSERT INTO resource (tenant_id, id, n) VALUES ($1, $2, 1) ON CONFLICT (tenant_id, id) DO UPDATE SET n = resource.n + EXCLUDED.n, m = greatest(resource.m, EXCLUDED.m)`)).toEqual([]);
    });

    it('a function that is not immutable inside CASE or COALESCE in a write, or STABLE over a column in an UPDATE', () => {
      expect(rules(`INSERT INTO oidc_payload (model, id, expires_at) VALUES ($1, $2, CASE WHEN $3::int IS NULL THEN NULL ELSE now() + make_interval(secs => $3::int) END)`)).toEqual(['stable-in-write']);
      expect(rules(`INSERT INTO oidc_payload (model, id, expires_at) VALUES ($1, $2, now() + make_interval(secs => $3::int))`)).toEqual([]);
      expect(rules(`UPDATE signing_key SET superseded_at = coalesce(superseded_at, now()), retire_at = now() WHERE kid = $1`)).toEqual(['stable-in-write']);
      expect(rules(`UPDATE signing_key SET superseded_at = least(superseded_at, now()), retire_at = now() WHERE kid = $1`)).toEqual([]);
      expect(rules(`UPDATE subscription_event SET delivered_at = CASE WHEN $4 = 'delivered' THEN now() ELSE delivered_at END WHERE tenant_id = $1`)).toEqual(['stable-in-write']);
      expect(rules(`UPDATE subscription_event SET delivered_at = CASE WHEN $4 = 'd' THEN $5::timestamptz ELSE delivered_at END WHERE tenant_id = $1`)).toEqual([]);
      expect(rules(`WITH l AS (SELECT address FROM signin_counter WHERE tenant_id = $1) UPDATE signin_counter c SET expires_at = coalesce(l.locked_until, now()) + make_interval(mins => $6::int) FROM l WHERE c.tenant_id = $1 AND c.address = l.address`)).toEqual(['stable-in-write']);
      expect(rules(`UPDATE break_glass_grant SET expires_at = $5::timestamptz + make_interval(mins => minutes) WHERE tenant_id = $1 AND id = $2`)).toEqual(['stable-in-write']);
      expect(rules(`UPDATE job SET run_at = run_at + interval '1 minute' WHERE tenant_id = $1`)).toEqual(['stable-in-write']);
      expect(rules(`UPDATE break_glass_grant SET expires_at = to_timestamp($6::float8 + minutes * 60) WHERE tenant_id = $1 AND id = $2`)).toEqual([]);
      // STABLE over constants only is evaluated once on the coordinator: allowed
      expect(rules(`UPDATE subscription_event SET next_attempt_at = now() + make_interval(secs => $4) WHERE tenant_id = $1 AND next_attempt_at <= now() + interval '50 milliseconds'`)).toEqual([]);
      // a read may use them freely
      expect(rules(`SELECT CASE WHEN locked_until > now() THEN locked_until END FROM signin_counter WHERE tenant_id = $1 FOR UPDATE`)).toEqual([]);
    });

    it('a tenant table read, updated or deleted without its tenant', () => {
      expect(rules('SELECT content FROM resource WHERE resource_type = $1 AND id = $2')).toEqual(['tenant-filter']);
      expect(rules('SELECT content FROM resource WHERE tenant_id = $1 AND id = $2')).toEqual([]);
      expect(rules('UPDATE subscription_state SET status = $2 WHERE id = $1')).toEqual(['tenant-filter']);
      expect(rules('DELETE FROM outbox WHERE seq = ANY($1::bigint[])')).toEqual(['tenant-filter']);
      expect(rules('SELECT r.id FROM resource r JOIN sp_token x ON x.resource_id = r.id WHERE r.tenant_id = $1')).toEqual(['tenant-filter']);
      expect(rules('SELECT r.id FROM resource r JOIN sp_token x ON x.tenant_id = r.tenant_id AND x.resource_id = r.id WHERE r.tenant_id = $1')).toEqual([]);
      expect(rules('SELECT 1 FROM resource r WHERE r.tenant_id = ANY($1::text[])')).toEqual([]);
      expect(rules('SELECT 1 FROM resource WHERE tenant_id = t', { plpgsql: true })).toEqual([]);
      expect(rules('SELECT 1 FROM resource WHERE tenant_id = t')).toEqual(['tenant-filter']);
      // FOR UPDATE, DO UPDATE and IS DISTINCT FROM name no table
      expect(rules('SELECT 1 FROM resource WHERE tenant_id = $1 AND a IS DISTINCT FROM $2 FOR UPDATE')).toEqual([]);
      // a platform table needs no tenant
      expect(rules('SELECT * FROM tenant WHERE id = $1')).toEqual([]);
    });

    it('an INSERT that does not name its columns, or not tenant_id', () => {
      expect(rules('INSERT INTO sp_token VALUES ($1, $2, $3, $4, $5, $6)')).toEqual(['insert-columns']);
      expect(rules('INSERT INTO resource (resource_type, id) VALUES ($1, $2)')).toEqual(['insert-columns']);
    });

    it('follows placeholders to where the condition is built, and reports the file and line', () => {
      const dir = join(ROOT, 'src', 'store');
      const files: Record<string, string> = {
        [join(dir, 'probe-a.ts')]: [
          "import { tenantCond } from './probe-b.js';",
          'export async function good(q, t) {',
          "  const where = ['x.code = $2'];",
          '  where.push(tenantCond());',
          '  return q.query(`SELECT 1 FROM sp_token x WHERE ${where.join(\' AND \')}`, [t]);',
          '}',
          'export async function bad(q, table) {',
          '  const where = [`x.code = $2`];',
          '  return q.query(`DELETE FROM ${table} x WHERE ${where.join(\' AND \')}`);',
          '}',
        ].join('\n'),
        [join(dir, 'probe-b.ts')]: 'export function tenantCond() { return `x.tenant_id = $1`; }\n',
      };
      const { findings } = scan(new Sources(Object.keys(files), (p) => files[p]), [], new Set(['sp_token']));
      expect(findings.map(show)).toEqual([`src/store/probe-a.ts:9 tenant-filter: ${HOLE} x is read without tenant_id = $n (Citus cannot route it)`]);
    });

    it('reads migrations, function bodies included, and reports the line', () => {
      const sql = [
        'CREATE TABLE t (tenant_id text NOT NULL, id text);',
        "-- a comment that names FROM t, and a constant that does: 'FROM t'",
        'CREATE FUNCTION f() RETURNS SETOF text LANGUAGE sql AS $f$',
        "  SELECT 'a',",
        "    'FROM t'",
        '    || id FROM t',
        '$f$;',
      ].join('\n');
      const { findings } = scan(new Sources([]), [{ file: 'migrations/9999_probe.sql', sql }], new Set(['t']));
      expect(findings.map(show)).toEqual(['migrations/9999_probe.sql:6 tenant-filter: t is read without tenant_id = $n (Citus cannot route it)']);
    });
  });
});
