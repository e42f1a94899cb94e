// The Users page (admins): add a user, remove one; the API says why when it refuses.
import { csrf, send } from "./session.js";

const error = document.getElementById("users-error");

async function refused(answer) {
  const body = await answer.json().catch(() => ({}));
  const detail = Array.isArray(body.detail) ? body.detail.map((d) => d.msg).join("; ") : body.detail;
  error.textContent = detail || `refused (${answer.status})`;
}

document.getElementById("add-user").addEventListener("submit", async (event) => {
  event.preventDefault();
  error.textContent = "";
  const data = new FormData(event.target);
  const answer = await fetch("/api/users", {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
    body: JSON.stringify({ username: data.get("username"), password: data.get("password"), role: data.get("role") }),
  });
  if (answer.ok) location.reload();
  else await refused(answer);
});

for (const button of document.querySelectorAll("button.remove-user")) {
  button.addEventListener("click", async () => {
    const name = button.dataset.user;
    if (!confirm(`Remove ${name}? Their sessions end at once.`)) return;
    const answer = await send("DELETE", `/api/users/${encodeURIComponent(name)}`);
    if (answer.ok) location.reload();
    else await refused(answer);
  });
}
