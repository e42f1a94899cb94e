// The call page: an admin may erase the call (the API refuses anyone else, and calls in progress).
import { send } from "./session.js";

const erase = document.getElementById("erase");
if (erase) {
  erase.addEventListener("click", async () => {
    if (!confirm("Erase this call, its transcript and its recording for good?")) return;
    const answer = await send("DELETE", `/api/calls/${erase.dataset.call}`);
    if (answer.ok) location.assign("/calls");
    else alert(`Not erased: ${(await answer.json()).detail}`);
  });
}
