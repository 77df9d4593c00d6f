// A small offline reader for /openapi.json: every route, its parameters, bodies and answers.
"use strict";

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  return node;
}

function typeOf(schema, spec) {
  if (!schema) return "";
  if (schema.$ref) return schema.$ref.split("/").pop();
  if (schema.anyOf) return schema.anyOf.map((s) => typeOf(s, spec)).join(" | ");
  if (schema.type === "array") return `${typeOf(schema.items, spec)}[]`;
  if (schema.enum) return schema.enum.map((v) => JSON.stringify(v)).join(" | ");
  return schema.format ? `${schema.type} (${schema.format})` : schema.type || "object";
}

function table(header, rows) {
  const t = el("table");
  const head = el("tr");
  header.forEach((h) => head.append(el("th", "", h)));
  t.append(head);
  rows.forEach((r) => { const tr = el("tr"); r.forEach((c) => tr.append(el("td", "", c))); t.append(tr); });
  return t;
}

async function render() {
  const main = document.getElementById("api");
  const spec = await (await fetch("/openapi.json")).json();
  main.replaceChildren(el("p", "muted", spec.info.description || ""));
  for (const [path, methods] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      const section = el("section", "face route");
      section.append(el("h3", "", `${method.toUpperCase()} ${path}`));
      if (op.description || op.summary) section.append(el("p", "", op.description || op.summary));
      const params = (op.parameters || []).map((p) => [p.name, p.in, typeOf(p.schema, spec), p.description || ""]);
      if (params.length) section.append(table(["parameter", "in", "type", "meaning"], params));
      if (op.requestBody) section.append(el("p", "muted", `body: ${Object.keys(op.requestBody.content).join(" or ")}`));
      const answers = Object.entries(op.responses || {}).map(([code, r]) => {
        const content = r.content && r.content["application/json"];
        return [code, r.description || "", content ? typeOf(content.schema, spec) : ""];
      });
      section.append(table(["status", "meaning", "JSON"], answers));
      main.append(section);
    }
  }
  const schemas = (spec.components && spec.components.schemas) || {};
  main.append(el("h2", "", "Schemas"));
  for (const [name, schema] of Object.entries(schemas)) {
    const section = el("section", "face");
    section.append(el("h3", "", name));
    const rows = Object.entries(schema.properties || {}).map(([k, v]) => [k, typeOf(v, spec), v.description || ""]);
    section.append(table(["field", "type", "meaning"], rows));
    main.append(section);
  }
}

render().catch((err) => { document.getElementById("api").textContent = `cannot read /openapi.json: ${err.message}`; });
