// The login form: JSON to /api/login (a cross-site form cannot send JSON), then back where the user was going.
const form = document.getElementById("login");
const error = document.getElementById("login-error");
form.addEventListener("submit", async (event) => {
  event.preventDefault();
  error.textContent = "";
  const data = new FormData(form);
  const answer = await fetch("/api/login", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ username: data.get("username"), password: data.get("password") }),
  });
  if (!answer.ok) {
    error.textContent = "Wrong user name or password, or too many failures: wait a few minutes.";
    return;
  }
  const next = new URLSearchParams(location.search).get("next") || "/calls";
  location.assign(next.startsWith("/") && !next.startsWith("//") ? next : "/calls");
});
