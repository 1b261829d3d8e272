// The dashboard's entry point: login (a bearer token, or a kubeconfig whose token is read
// here, in the browser), the hash router (#/fleet, #/workloads[/ns/name], #/queues, #/whatif)
// and the live indicator. Each view gets an AbortSignal that ends its requests and watches
// when the user leaves it.

import { api, forgetToken, setToken, token, whenUnauthorized } from "./api.js";
import { clear, h } from "./dom.js";
import { fleetPage } from "./fleet.js";

// The other pages load when first opened: the fleet page, the usual first one, waits for nothing else.
const workloads = () => import("./workloads.js");

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const who = document.getElementById("who");
const live = document.getElementById("live");
const login = document.getElementById("login");
const loginForm = document.getElementById("login-form");
const loginError = document.getElementById("login-error");
const tokenInput = document.getElementById("token");
const kubeconfigInput = document.getElementById("kubeconfig");
const logout = document.getElementById("logout");

let current = null;

function setLive(on) {
  live.textContent = on ? "● live" : "○ reconnecting…";
  live.className = on ? "live on" : "live off";
}

/** The token of a kubeconfig: its current context's user, else the first user with a token. */
export async function kubeconfigToken(text) {
  const { parseDocuments } = await import("./yaml.js");
  const [doc] = parseDocuments(text);
  const users = doc?.users || [];
  const ctx = (doc?.contexts || []).find((c) => c.name === doc?.["current-context"]);
  const user = users.find((u) => u.name === ctx?.context?.user) || users.find((u) => u.user?.token);
  const t = user?.user?.token;
  if (!t) throw new Error("the kubeconfig has no users[].user.token (client certificates and exec plugins cannot be used here)");
  return String(t);
}

function showLogin(message) {
  if (current) current.abort();
  current = null;
  forgetToken();
  who.textContent = "";
  logout.hidden = true;
  nav.hidden = true;
  clear(main);
  live.textContent = "";
  login.hidden = false;
  loginError.textContent = message || "";
  loginError.hidden = !message;
  tokenInput.focus();
}

function whoami() {
  return api("/apis/authentication.k8s.io/v1/selfsubjectreviews", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ apiVersion: "authentication.k8s.io/v1", kind: "SelfSubjectReview" }),
  });
}

function signedIn(review) {
  who.textContent = `signed in as ${review.status?.userInfo?.username || "?"}`;
}

function showApp() {
  login.hidden = true;
  nav.hidden = false;
  logout.hidden = false;
}

/** A new token: checked (who am I) before any page is shown. */
async function signIn(t) {
  setToken(t);
  signedIn(await whoami());
  showApp();
  route();
}

/** The tab's token from before a reload: the page's data is requested at once, beside the
 * "who am I" (a 401 from either shows the login), so the first paint waits for no extra round trip. */
function resume() {
  showApp();
  route();
  whoami()
    .then(signedIn)
    .catch(() => {});
}

/** A page from a module loaded on first use (not drawn if the user has moved on meanwhile). */
const lazy = (load, draw) => async (root, signal, m) => {
  const mod = await load();
  if (!signal.aborted) draw(mod, root, signal, m);
};

const ROUTES = [
  [/^#\/fleet$/, (r, sig) => fleetPage(r, sig, setLive), "fleet"],
  [/^#\/workloads$/, lazy(workloads, (w, r, sig) => w.workloadsPage(r, sig, setLive)), "workloads"],
  [
    /^#\/workloads\/([^/]+)\/([^/]+)$/,
    lazy(workloads, (w, r, sig, m) => w.workloadDetail(r, sig, setLive, decodeURIComponent(m[1]), decodeURIComponent(m[2]))),
    "workloads",
  ],
  [/^#\/queues$/, lazy(() => import("./queues.js"), (q, r, sig) => q.queuesPage(r, sig, setLive)), "queues"],
  [/^#\/whatif$/, lazy(() => import("./whatif.js"), (w, r, sig) => w.whatifPage(r, sig, setLive)), "whatif"],
];

function route() {
  if (!token()) return showLogin("");
  const hash = location.hash || "#/fleet";
  const found = ROUTES.map(([re, page, tab]) => [hash.match(re), page, tab]).find(([m]) => m);
  if (current) current.abort();
  current = new AbortController();
  live.textContent = "";
  if (!found) {
    clear(main, h("h1", null, "Not found"), h("p", null, h("a", { href: "#/fleet" }, "Go to the fleet")));
    return;
  }
  const [m, page, tab] = found;
  for (const a of nav.querySelectorAll("a")) {
    if (a.dataset.tab === tab) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  const signal = current.signal;
  Promise.resolve(page(main, signal, m)).then(() => signal.aborted || main.focus({ preventScroll: true }));
}

whenUnauthorized((message) => showLogin(`The hub refused the token: ${message}`));

loginForm.addEventListener("submit", async (e) => {
  e.preventDefault();
  let t = tokenInput.value.trim();
  try {
    const file = kubeconfigInput.files[0];
    if (!t && file) t = await kubeconfigToken(await file.text());
  } catch (err) {
    loginError.textContent = `That kubeconfig cannot be used: ${err.message}`;
    loginError.hidden = false;
    return;
  }
  if (!t) {
    loginError.textContent = "Paste a token or choose a kubeconfig file.";
    loginError.hidden = false;
    return;
  }
  tokenInput.value = "";
  kubeconfigInput.value = "";
  try {
    await signIn(t);
  } catch (err) {
    if (token()) showLogin(`Signing in failed: ${err.message}`);
  }
});

logout.addEventListener("click", () => showLogin(""));
// The skip link moves focus to the page; followed as a link, its "#main" would be a route.
document.querySelector("a.skip").addEventListener("click", (e) => {
  e.preventDefault();
  main.focus();
});
window.addEventListener("hashchange", () => {
  if (token()) route();
});

if (token()) resume();
else showLogin("");
