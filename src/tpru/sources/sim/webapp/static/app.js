// tpru's small web app for sim:gui: five apps (to-do, settings, shop, contact, notes) behind
// a home screen. Content comes from window.APP_CONFIG (the simulator injects it before any
// page script runs); state lives in localStorage so it survives page changes. Plain DOM
// code, no external resources.
"use strict";

const DEFAULTS = {
  user: "Sam", accent: "#0f766e",
  todo: { title: "Today", items: [] },
  settings: [{ name: "Wi-Fi", on: true }, { name: "Bluetooth", on: false }],
  shop: { name: "Corner shop", currency: "€",
          products: [{ name: "Blue mug", colour: "#2563eb", price: 12 }] },
  contact: { org: "Support", topics: ["Billing", "Delivery", "Returns", "Technical", "Other"],
             replies: ["Email", "Phone", "Post"] },
  notes: [], noteColours: { yellow: "#facc15", green: "#22c55e", blue: "#3b82f6" },
};
const CONFIG = Object.assign({}, DEFAULTS, window.APP_CONFIG || {});

const load = (key, fallback) => {
  const text = localStorage.getItem(key);
  return text === null ? fallback : JSON.parse(text);
};
const save = (key, value) => localStorage.setItem(key, JSON.stringify(value));
const $ = (selector) => document.querySelector(selector);
const el = (tag, props = {}, ...children) => {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
};
const money = (n) => CONFIG.shop.currency + n.toFixed(2);

const pages = {
  home() {
    $("#greeting").textContent = `Good day, ${CONFIG.user}`;
  },

  todo() {
    let items = load("todo", CONFIG.todo.items.map((text) => ({ text, done: false })));
    $("#title").textContent = CONFIG.todo.title;
    const render = () => {
      $("#items").replaceChildren(...items.map((item, i) => {
        const tick = el("button", { className: "tick", id: `tick-${i}`, type: "button" });
        tick.onclick = () => { item.done = !item.done; save("todo", items); render(); };
        return el("li", { className: item.done ? "item done" : "item", id: `item-${i}` },
                  tick, el("span", { textContent: item.text }));
      }));
      $("#count").textContent = `${items.filter((i) => i.done).length} of ${items.length} done`;
    };
    $("#add-form").onsubmit = (event) => {
      event.preventDefault();
      const text = $("#new-item").value.trim();
      if (text) { items.push({ text, done: false }); save("todo", items); }
      $("#new-item").value = "";
      render();
    };
    render();
  },

  settings() {
    const settings = load("settings", CONFIG.settings);
    const render = () => {
      $("#settings").replaceChildren(...settings.map((s, i) => {
        const toggle = el("button", { className: "switch", id: `switch-${i}`, type: "button" });
        toggle.setAttribute("role", "switch");
        toggle.setAttribute("aria-checked", String(s.on));
        toggle.onclick = () => { s.on = !s.on; save("settings", settings); render(); };
        return el("li", { className: s.on ? "setting on" : "setting", id: `setting-${i}` },
                  el("span", { textContent: s.name }), toggle);
      }));
    };
    render();
  },

  shop() {
    const cart = load("cart", {});
    $("#title").textContent = CONFIG.shop.name;
    const render = () => {
      const count = Object.values(cart).reduce((a, b) => a + b, 0);
      $("#cart-count").textContent = String(count);
      $("#products").replaceChildren(...CONFIG.shop.products.map((p, i) => {
        const qty = el("input", { className: "qty", id: `qty-${i}`, value: "1", placeholder: "1" });
        const add = el("button", { id: `add-${i}`, type: "button", textContent: "Add" });
        add.onclick = () => {
          const n = Math.max(1, parseInt(qty.value, 10) || 1);
          cart[i] = (cart[i] || 0) + n;
          save("cart", cart);
          render();
        };
        const swatch = el("div", { className: "swatch", textContent: p.name[0] });
        swatch.style.background = p.colour;
        const status = el("div", { className: "status",
                                   textContent: cart[i] ? `${cart[i]} in cart` : "" });
        return el("div", { className: cart[i] ? "card in-cart" : "card", id: `product-${i}` },
                  swatch, el("div", { className: "name", textContent: p.name }),
                  el("div", { textContent: money(p.price) }), el("div", { className: "buy" }, qty, add),
                  status);
      }));
    };
    render();
  },

  cart() {
    const cart = load("cart", {});
    $("#title").textContent = `${CONFIG.shop.name}: cart`;
    $("#lines").replaceChildren(...cartLines(cart).map(lineView));
    $("#total").textContent = `Total ${money(cartTotal(cart))}`;
  },

  checkout() {
    const cart = load("cart", {});
    const lines = cartLines(cart);
    $("#summary").textContent =
      `${lines.reduce((a, l) => a + l.qty, 0)} items, total ${money(cartTotal(cart))}`;
    $("#checkout-form").onsubmit = (event) => {
      event.preventDefault();
      save("order", { name: $("#name").value, street: $("#street").value,
                      city: $("#city").value, lines, total: cartTotal(cart) });
      localStorage.removeItem("cart");
      location.href = "done.html";
    };
  },

  done() {
    const order = load("order", { name: "", street: "", city: "", lines: [], total: 0 });
    $("#thanks").textContent = `Thank you, ${order.name}! ${money(order.total)} paid; ` +
      `delivery to ${order.street}, ${order.city}.`;
    $("#lines").replaceChildren(...order.lines.map(lineView));
  },

  contact() {
    $("#title").textContent = `Contact ${CONFIG.contact.org}`;
    const choices = (name, values) => values.map((value, i) => el(
      "label", { className: "choice", id: `${name}-${i}` },
      el("input", { type: "radio", name, value }), value));
    $("#topics").replaceChildren(...choices("topic", CONFIG.contact.topics));
    $("#replies").replaceChildren(...choices("reply", CONFIG.contact.replies));
    $("#contact-form").onsubmit = (event) => {
      event.preventDefault();
      save("contact", Object.fromEntries(new FormData($("#contact-form"))));
      location.href = "thanks.html";
    };
  },

  thanks() {
    const sent = load("contact", {});
    $("#thanks").textContent = `Thank you${sent.name ? ", " + sent.name : ""}! ` +
      `${CONFIG.contact.org} will reply${sent.reply ? " by " + sent.reply.toLowerCase() : ""}` +
      `${sent.topic ? " about " + sent.topic.toLowerCase() : ""}.`;
    $("#sent").replaceChildren(...Object.entries(sent).filter(([, v]) => v).map(
      ([k, v]) => el("li", { className: "line" }, el("span", { className: "what", textContent: k }),
                     el("span", { textContent: v }))));
  },

  notes() {
    const notes = load("notes", CONFIG.notes.map((n) => Object.assign({}, n)));
    let selected = notes.length ? 0 : -1;
    const store = () => save("notes", notes);
    const render = () => {
      $("#note-list").replaceChildren(...notes.map((n, i) => {
        const item = el("li", { className: i === selected ? "note selected" : "note",
                                id: `note-${i}`, textContent: n.title || "Untitled" });
        item.style.setProperty("--note", CONFIG.noteColours[n.colour] || "#e5e7eb");
        item.onclick = () => { selected = i; render(); };
        return item;
      }));
      const editor = $("#editor");
      if (selected < 0) {
        editor.replaceChildren(el("div", { className: "empty", textContent: "No note selected" }));
        editor.style.removeProperty("--paper");
        return;
      }
      const note = notes[selected];
      const paper = CONFIG.noteColours[note.colour];
      if (paper) editor.style.setProperty("--paper", `color-mix(in srgb, ${paper} 45%, white)`);
      else editor.style.removeProperty("--paper");
      const title = el("input", { id: "note-title", placeholder: "Title", value: note.title });
      title.oninput = () => { note.title = title.value; store(); $(`#note-${selected}`).textContent = title.value || "Untitled"; };
      const body = el("textarea", { id: "note-body", placeholder: "Write here", value: note.body });
      body.oninput = () => { note.body = body.value; store(); };
      const colours = el("div", { className: "colours" }, ...Object.entries(CONFIG.noteColours).map(
        ([name, hex]) => {
          const b = el("button", { id: `colour-${name}`, type: "button",
                                   className: note.colour === name ? "chosen" : "" });
          b.style.background = hex;
          b.onclick = () => { note.colour = name; store(); render(); };
          return b;
        }));
      const remove = el("button", { id: "delete-note", type: "button", textContent: "Delete" });
      remove.onclick = () => { notes.splice(selected, 1); selected = notes.length ? 0 : -1; store(); render(); };
      editor.replaceChildren(title, colours, body, el("div", {}, remove));
    };
    $("#new-note").onclick = () => {
      notes.unshift({ title: "", body: "", colour: "" });
      selected = 0;
      store();
      render();
    };
    render();
  },
};

function cartLines(cart) {
  return Object.entries(cart).map(([i, qty]) => Object.assign({ qty }, CONFIG.shop.products[i]));
}

function cartTotal(cart) {
  return cartLines(cart).reduce((a, l) => a + l.qty * l.price, 0);
}

function lineView(line) {
  const swatch = el("div", { className: "swatch" });
  swatch.style.background = line.colour;
  return el("li", { className: "line" }, swatch, el("span", { className: "what", textContent: line.name }),
            el("span", { textContent: `${line.qty} × ${money(line.price)}` }),
            el("strong", { textContent: money(line.qty * line.price) }));
}

document.documentElement.style.setProperty("--accent", CONFIG.accent);
document.addEventListener("DOMContentLoaded", () => pages[document.body.dataset.page]());
