// Renders /openapi.json: one block per operation with its parameters, body and responses.
(function () {
  "use strict";
  var root = document.getElementById("docs");

  function node(tag, attrs, text) {
    var n = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { n.setAttribute(k, attrs[k]); });
    if (text !== undefined) n.textContent = text;
    return n;
  }

  function resolve(spec, schema) {
    if (schema && schema.$ref) return spec.components.schemas[schema.$ref.split("/").pop()] || schema;
    return schema;
  }

  function render(spec) {
    root.innerHTML = "";
    root.appendChild(node("p", {}, spec.info.description || ""));
    Object.keys(spec.paths).forEach(function (path) {
      var item = spec.paths[path];
      Object.keys(item).forEach(function (method) {
        var op = item[method], box = node("div", { class: "op" });
        var head = node("div");
        head.appendChild(node("span", { class: "method " + method }, method.toUpperCase()));
        head.appendChild(node("code", {}, path));
        head.appendChild(document.createTextNode("  " + (op.summary || "") + (op.security ? "  [bearer token]" : "")));
        box.appendChild(head);
        if (op.description) box.appendChild(node("p", { class: "muted" }, op.description));
        (op.parameters || []).forEach(function (p) {
          box.appendChild(node("div", { class: "muted" }, p.in + " " + p.name + (p.required ? " (required)" : "") +
            ": " + JSON.stringify(p.schema)));
        });
        var details = node("details");
        details.appendChild(node("summary", {}, "schemas and responses"));
        if (op.requestBody) {
          var body = resolve(spec, op.requestBody.content["application/json"].schema);
          details.appendChild(node("div", {}, "request body:"));
          details.appendChild(node("pre", {}, JSON.stringify(body, null, 2)));
        }
        Object.keys(op.responses).forEach(function (code) {
          var r = op.responses[code], content = r.content && r.content["application/json"];
          details.appendChild(node("div", {}, code + ": " + r.description));
          if (content && code < "300") details.appendChild(node("pre", {}, JSON.stringify(resolve(spec, content.schema), null, 2)));
        });
        box.appendChild(details);
        root.appendChild(box);
      });
    });
  }

  fetch("/openapi.json").then(function (r) { return r.json(); }).then(render).catch(function (e) {
    root.textContent = "could not load /openapi.json: " + e;
  });
})();
