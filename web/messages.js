// Every message the page shows a person about what they cannot do or what went wrong, in one place.

/** "Hidden: Approve and Reject — your role (auditor) may not decide approvals." */
export function hiddenText(what, role, phrase) {
  return `Hidden: ${what} — your role (${role}) may not ${phrase}.`;
}
