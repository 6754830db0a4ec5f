// Progressive enhancement only: every page works without this file.
// A search box with data-filter-tree filters that tree as one types: units whose name, id or
// manager match stay visible (with their ancestors, opened); the form still searches on the server.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  for (const input of document.querySelectorAll("input[data-filter-tree]")) {
    const tree = document.getElementById(input.dataset.filterTree);
    if (!tree) continue;
    const filter = () => {
      const query = input.value.trim().toLowerCase();
      const visit = (details) => {
        const own = (details.dataset.search || "").toLowerCase().includes(query);
        let child = false;
        for (const sub of details.querySelectorAll(":scope > ul > li > details")) {
          if (visit(sub)) child = true;
        }
        const show = query === "" || own || child;
        details.parentElement.classList.toggle("hidden", !show);
        details.classList.toggle("match", query !== "" && own);
        if (query !== "" && child) details.open = true;
        return show;
      };
      for (const root of tree.querySelectorAll(":scope > li > details")) visit(root);
    };
    input.addEventListener("input", filter);
  }
});
