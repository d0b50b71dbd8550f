"""One SQL source, two engines: the small adapter that runs the models' DuckDB SQL on Spark.

The models are written in DuckDB's dialect (sql/). On Spark each statement is parsed by sqlglot
(DuckDB dialect), rewritten by the named rules below, and generated in Spark's dialect. Every
rule is listed in ``RULES`` with what it does; anything else is sqlglot's own transpilation.

The Spark path (phase 1) builds every model in full: ``full_build`` is true, so the incremental
branches of the SQL (``WHERE NOT getvariable('full_build')``) are constant false, and the rule
``prune`` removes them before generation. ``problems`` lists what the adapter cannot map in a
model (tests/test_spark.py runs it on every model that runs on Spark, without a JVM).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal

import sqlglot
from sqlglot import exp

from pipelines.warehouse import SCHEMAS, parameters, sql_text

# The rules, in the order they apply (``Adapter.adapt``, then ``relations``). On Spark,
# ``schema.table`` is the temporary view ``schema__table``: Spark's session catalog has no
# schemas for temporary views.
RULES = {
    "inline_macros": "a call of a DuckDB macro (sql/reference/macros.sql, a model's own "
    "CREATE MACRO) becomes its body; a table macro's query_table(arg) becomes the relation "
    "named by the argument",
    "bind_variables": "getvariable('name') becomes the literal of its value (the run's "
    "parameters, the runner's full_build / previous_as_of / after_file_id, and the values "
    "SET VARIABLE computed before, on Spark)",
    "prune": "with the variables bound, boolean constants are folded (x AND false -> false) "
    "and a UNION ALL's right branch that returns no row (WHERE false, no aggregate without "
    "GROUP BY) is dropped: a full build runs none of the incremental branches",
    "functions": "epoch_us -> unix_micros; timezone(zone, t) -> from_utc_timestamp(t, zone); "
    "format('{}', x) -> format_string('%s', CAST(x AS STRING)); "
    "to_months(n) -> make_ym_interval(0, n)",
    "relations": "schema.table -> the temporary view schema__table",
}

# Spark built-in functions the models use once adapted (lower case): a function sqlglot leaves
# as an unknown call must be one of them, else ``problems`` reports it.
SPARK_FUNCTIONS = frozenset(
    {
        "unix_micros",
        "from_utc_timestamp",
        "format_string",
        "make_ym_interval",
        "any_value",
        "listagg",
        "make_date",
        "last_day",
        "lpad",
        "timestamp_micros",
    }
)
Value = bool | int | float | str | date | Decimal | None


def literal(value: Value) -> exp.Expression:
    """The SQL literal of a variable's value, typed as DuckDB types it (SET VARIABLE)."""
    if value is None:
        return exp.Null()
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, datetime):
        return exp.cast(exp.Literal.string(value.isoformat(sep=" ")), "TIMESTAMP")
    if isinstance(value, date):
        return exp.cast(exp.Literal.string(value.isoformat()), "DATE")
    if isinstance(value, float):
        return exp.cast(exp.Literal.string(repr(value)), "DOUBLE")
    if isinstance(value, int | Decimal):
        return exp.Literal.number(str(value))
    return exp.Literal.string(str(value))


def parse(sql: str) -> list[exp.Expression]:
    """The statements of a DuckDB SQL text."""
    return [statement for statement in sqlglot.parse(sql, read="duckdb") if statement is not None]


class Macros:
    """The DuckDB macros a model's SQL calls: scalar ones (name -> parameters, body) and table
    ones (body a query whose ``query_table(param)`` names a relation)."""

    def __init__(self) -> None:
        self.scalar: dict[str, tuple[list[str], exp.Expression]] = {}
        self.table: dict[str, tuple[list[str], exp.Expression]] = {}

    @classmethod
    def of_reference(cls) -> Macros:
        """The macros of sql/reference/macros.sql (``ref.paris_date``), which every model may
        call."""
        macros = cls()
        for statement in parse(sql_text("reference/macros")):
            macros.define(statement)
        return macros

    def define(self, statement: exp.Create) -> None:
        function = statement.this
        name = function.this.name.lower()
        params = [p.name for p in function.expressions]
        body = statement.expression
        target = self.table if isinstance(body, exp.Query) else self.scalar
        target[name] = (params, body)

    def call(self, name: str, args: list[exp.Expression]) -> exp.Expression | None:
        if name not in self.scalar:
            return None
        params, body = self.scalar[name]
        bound = dict(zip(params, args, strict=True))

        def substitute(node: exp.Expression) -> exp.Expression:
            if isinstance(node, exp.Column) and not node.table and node.name in bound:
                return exp.paren(bound[node.name].copy(), copy=False)
            return node

        return exp.paren(body.copy().transform(substitute), copy=False)

    def table_call(self, name: str, args: list[exp.Expression]) -> exp.Expression | None:
        if name not in self.table:
            return None
        params, body = self.table[name]
        relations = {p: a.name for p, a in zip(params, args, strict=True)}

        def substitute(node: exp.Expression) -> exp.Expression:
            if (
                isinstance(node, exp.Table)
                and isinstance(node.this, exp.Anonymous)
                and node.this.name.lower() == "query_table"
            ):
                relation = exp.to_table(relations[node.this.expressions[0].name])
                return relation.as_(node.alias) if node.alias else relation
            return node

        return body.copy().transform(substitute)


class Adapter:
    """Rewrites DuckDB statements of the models for Spark (the rules of ``RULES``)."""

    def __init__(self, variables: dict[str, Value], macros: Macros | None = None) -> None:
        self.variables = dict(variables)
        self.macros = macros or Macros()

    def adapt(self, node: exp.Expression) -> exp.Expression:
        """The statement (or expression) rewritten by every rule, ready for Spark."""
        node = node.copy()
        for rule in (self.inline_macros, self.bind_variables, prune, functions):
            node = rule(node)
        return node

    def bind_variables(self, node: exp.Expression) -> exp.Expression:
        def bind(n: exp.Expression) -> exp.Expression:
            if isinstance(n, exp.Anonymous) and n.name.lower() == "getvariable":
                name = n.expressions[0].name
                if name not in self.variables:
                    raise KeyError(f"getvariable('{name}'): no value bound on Spark")
                return literal(self.variables[name])
            return n

        return node.transform(bind)

    def inline_macros(self, node: exp.Expression) -> exp.Expression:
        def inline(n: exp.Expression) -> exp.Expression:
            if isinstance(n, exp.Table) and isinstance(n.this, exp.Anonymous):
                body = self.macros.table_call(n.this.name.lower(), n.this.expressions)
                if body is not None:
                    return exp.Subquery(
                        this=self.inline_macros(body),
                        alias=exp.TableAlias(this=exp.to_identifier(n.alias or n.this.name)),
                    )
            call = n.expression if isinstance(n, exp.Dot) else n
            if isinstance(call, exp.Anonymous):
                body = self.macros.call(call.name.lower(), call.expressions)
                if body is not None:
                    return self.inline_macros(body)
            return n

        return node.transform(inline)

    def spark_sql(self, node: exp.Expression) -> str:
        """The Spark SQL of an adapted query or expression, relations renamed."""
        return relations(node).sql(dialect="spark", comments=False)


def view_name(qualified: str) -> str:
    """The Spark temporary view of the warehouse relation ``schema.table``."""
    schema, table = qualified.split(".")
    return f"{schema}__{table}"


def relations(node: exp.Expression) -> exp.Expression:
    """schema.table -> schema__table (rule ``relations``)."""

    def rename(n: exp.Expression) -> exp.Expression:
        if isinstance(n, exp.Table) and n.db in SCHEMAS and not isinstance(n.this, exp.Anonymous):
            renamed = exp.to_table(view_name(f"{n.db}.{n.name}"))
            return renamed.as_(n.alias) if n.alias else renamed
        return n

    return node.copy().transform(rename)


def _fold(n: exp.Expression) -> exp.Expression:
    if isinstance(n, exp.Paren) and isinstance(n.this, exp.Boolean):
        return n.this
    if isinstance(n, exp.Not) and isinstance(n.this, exp.Boolean):
        return exp.Boolean(this=not n.this.this)
    if isinstance(n, exp.And | exp.Or):
        left, right = n.this, n.expression
        absorbing = isinstance(n, exp.Or)  # true absorbs an OR, false an AND
        for one, other in ((left, right), (right, left)):
            if isinstance(one, exp.Boolean):
                return exp.Boolean(this=absorbing) if one.this == absorbing else other
    return n


def _is_empty(query: exp.Expression) -> bool:
    """A SELECT that returns no row: its WHERE is false and it does not aggregate without a
    GROUP BY (``SELECT count(*) ... WHERE false`` is one row)."""
    if not isinstance(query, exp.Select):
        return False
    where = query.args.get("where")
    if where is None or not isinstance(where.this, exp.Boolean) or where.this.this:
        return False
    return bool(query.args.get("group")) or query.find(exp.AggFunc) is None


def prune(node: exp.Expression) -> exp.Expression:
    """Rule ``prune``: fold boolean constants; drop UNION ALL branches whose WHERE is false;
    drop a WHERE that is true."""
    while True:  # (transform goes down the tree; folding goes up it: until nothing changes)
        folded = node.transform(_fold)
        if folded == node:
            break
        node = folded

    def drop(n: exp.Expression) -> exp.Expression:
        # (the right branch only: the left one names the union's columns)
        if isinstance(n, exp.Union) and not n.args.get("distinct") and _is_empty(n.expression):
            return n.this
        if isinstance(n, exp.Where) and isinstance(n.this, exp.Boolean) and n.this.this:
            return None
        return n

    while True:
        dropped = node.transform(drop)
        if dropped == node:
            return node
        node = dropped


def _format_string(template: exp.Expression, args: list[exp.Expression]) -> exp.Expression:
    """DuckDB's format('{}', x) prints x as its text (a date: 2026-01-11); Spark's %s of a
    date prints its day number (20464): every argument is cast to a string first."""
    # ('adjacent ' 'literals' are one template, parsed as a concatenation)
    pieces = template.expressions if isinstance(template, exp.Concat) else [template]
    if not all(isinstance(p, exp.Literal) and p.is_string for p in pieces):
        raise ValueError(f"format(): the template must be a literal, not {template.sql()}")
    text = "".join(p.name for p in pieces).replace("%", "%%").replace("{}", "%s")
    return exp.Anonymous(
        this="format_string",
        expressions=[exp.Literal.string(text), *(exp.cast(a, "STRING") for a in args)],
    )


# DuckDB function -> (Spark function, its arguments from DuckDB's)
_FUNCTIONS: dict[str, tuple[str, Callable[[list[exp.Expression]], list[exp.Expression]]]] = {
    "epoch_us": ("unix_micros", lambda a: a),
    "timezone": ("from_utc_timestamp", lambda a: [a[1], a[0]]),
    "to_months": ("make_ym_interval", lambda a: [exp.Literal.number(0), a[0]]),
}


def functions(node: exp.Expression) -> exp.Expression:
    """Rule ``functions``: DuckDB functions with another name or argument order on Spark."""

    def rewrite(n: exp.Expression) -> exp.Expression:
        if isinstance(n, exp.Anonymous) and n.name.lower() in _FUNCTIONS:
            name, arguments = _FUNCTIONS[n.name.lower()]
            return exp.Anonymous(this=name, expressions=arguments(n.expressions))
        if isinstance(n, exp.Anonymous) and n.name.lower() == "format":
            return _format_string(n.expressions[0], n.expressions[1:])
        if isinstance(n, exp.Format):  # sqlglot's own parse of format(...)
            return _format_string(n.this, n.expressions)
        return n

    return node.transform(rewrite)


_SPECIALS = re.compile(r"\b(getvariable|query_table)\b", re.I)


def problems(statement: exp.Expression, adapter: Adapter) -> list[str]:
    """What the adapter cannot map in ``statement`` (a model's SQL, as Spark would run it)."""
    if isinstance(statement, exp.Create) and statement.kind == "MACRO":
        return []
    found = []
    adapted = adapter.adapt(statement)
    for node in adapted.walk():
        if isinstance(node, exp.Anonymous) and node.name.lower() not in SPARK_FUNCTIONS:
            found.append(f"function {node.name}() has no Spark mapping")
        if isinstance(node, exp.Star) and (node.args.get("except_") or node.args.get("replace")):
            found.append("* EXCLUDE / * REPLACE: list the columns")
        if isinstance(node, exp.Union) and node.args.get("by_name"):
            found.append("UNION BY NAME: list the columns in the same order")
        if isinstance(node, exp.Tuple) and isinstance(node.parent, exp.Distinct | exp.Is):
            found.append("a row value (a, b): compare or count the columns")
        if isinstance(node, exp.Sub) and _both_dates(node):
            found.append("date - date: write date_diff('day', a, b)")
        if isinstance(node, exp.Unnest | exp.Explode) and not isinstance(
            node.parent, exp.Alias | exp.Select | exp.From | exp.Join
        ):
            found.append("unnest() inside an expression: unnest in a subquery, cast outside")
        if isinstance(node, exp.Subquery) and _in_join_condition(node):
            found.append("a subquery in a JOIN condition: join the relation instead")
    if isinstance(statement, exp.Insert) and (
        statement.args.get("alternative") or statement.args.get("conflict")
    ):
        found.append("INSERT OR REPLACE / ON CONFLICT: Spark's phase 1 only appends")
    if isinstance(statement, exp.Update):
        found.append("UPDATE: Spark's phase 1 rebuilds, never updates (engine: duckdb)")
    found = list(dict.fromkeys(found))  # once each
    text = adapter.spark_sql(adapted)
    if _SPECIALS.search(text):
        found.append("getvariable/query_table left after adaptation")
    return found


def _in_join_condition(node: exp.Expression) -> bool:
    child, parent = node, node.parent
    while parent is not None and not isinstance(parent, exp.Join):
        child, parent = parent, parent.parent
    return parent is not None and parent.args.get("on") is child


def model_problems(sql: str, as_of: date) -> list[str]:
    """``problems`` of every statement of a model's SQL text, its macros defined as they come
    (the variables SET by the SQL itself are bound to null: nothing runs)."""
    macros = Macros.of_reference()
    adapter = Adapter(runner_variables(as_of), macros)
    found = []
    for number, statement in enumerate(parse(sql), 1):
        if isinstance(statement, exp.Create) and statement.kind == "MACRO":
            macros.define(statement)
        elif isinstance(statement, exp.Set):
            for item in statement.expressions:
                adapter.variables[item.this.this.name] = None
        else:
            found += [f"statement {number}: {problem}" for problem in problems(statement, adapter)]
    return found


def _both_dates(node: exp.Sub) -> bool:
    """A subtraction whose two sides are known dates (a DATE cast or literal, or a column whose
    name says it is a date): DuckDB gives days, Spark an interval."""
    return all(_looks_like_date(side) for side in (node.this, node.expression))


def _looks_like_date(node: exp.Expression) -> bool:
    if isinstance(node, exp.Cast):
        return node.to.is_type("date")
    if isinstance(node, exp.Column):
        name = node.name
        return name.endswith(("_date", "_from", "_until", "_start", "_end", "_day", "_on"))
    return False


def runner_variables(as_of: date) -> dict[str, Value]:
    """The variables of a Spark build: the run's parameters and the runner's, full build."""
    return parameters(as_of) | {"full_build": True, "previous_as_of": None, "after_file_id": 0}
