// The Live page: calls in progress from /api/live (server-sent events), each with its transcript as it grows.
// Text is set with textContent only: a caller's words may hold anything.
const board = document.getElementById("calls");
const state = document.getElementById("live-state");
const none = document.getElementById("no-calls");
const cards = new Map(); // call id -> {card, call}
const ENDED_SHOWN_MS = 10000; // an ended call stays this long, greyed, before it leaves the page

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function seconds(call) {
  const since = Date.parse(call.started_at || call.created_at);
  const until = call.ended_at ? Date.parse(call.ended_at) : Date.now();
  return Math.max(0, Math.round((until - since) / 1000));
}

function render(call) {
  const card = element("article", `call ${call.status}`);
  card.dataset.call = call.id;
  const head = element("header");
  const link = element("a", "who", `${call.caller} → ${call.agent}`);
  link.href = `/calls/${call.id}`;
  head.append(link, element("span", "status", call.end_reason ? `${call.status}, ${call.end_reason}` : call.status),
              element("span", "duration", `${seconds(call)} s`));
  const turns = element("ol", "turns");
  for (const turn of call.turns) {
    const item = element("li", `turn ${turn.role}`);
    item.append(element("span", "who", turn.role), document.createTextNode(" "),
                element("time", "", turn.at.slice(11, 19)));
    const said = element("p", "", turn.text);
    if (turn.interrupted) said.append(" ", element("span", "tag", "interrupted"));
    item.append(said);
    turns.append(item);
  }
  card.append(head, turns);
  return card;
}

function show(call) {
  const known = cards.get(call.id);
  const card = render(call);
  if (known) known.card.replaceWith(card);
  else board.append(card);
  cards.set(call.id, { card, call });
  if (["ringing", "active"].includes(call.status)) return;
  setTimeout(() => { // over: leave the page after a while (unless it came back, which it does not)
    const now = cards.get(call.id);
    if (now && now.card === card) { card.remove(); cards.delete(call.id); showEmpty(); }
  }, ENDED_SHOWN_MS);
}

function showEmpty() { none.hidden = cards.size > 0; }

function connect() {
  const source = new EventSource("/api/live");
  source.addEventListener("calls", (event) => { // on (re)connecting: everything in progress now
    board.replaceChildren();
    cards.clear();
    for (const call of JSON.parse(event.data)) show(call);
    showEmpty();
    state.textContent = "live";
    state.className = "live-on";
  });
  source.addEventListener("call", (event) => { show(JSON.parse(event.data)); showEmpty(); });
  source.addEventListener("error", () => { // the browser reconnects by itself; the snapshot starts it over
    state.textContent = "reconnecting…";
    state.className = "muted";
  });
}

setInterval(() => { // the clocks of calls in progress
  for (const { card, call } of cards.values()) {
    if (!call.ended_at) card.querySelector(".duration").textContent = `${seconds(call)} s`;
  }
}, 1000);
connect();
