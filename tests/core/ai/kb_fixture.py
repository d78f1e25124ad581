"""A hand-written KB of 16 MSP runbook articles and 44 labelled tickets for KB-linking evaluation (reference/ai.md §6,
§8.6: hit@1 / hit@3 with a stated relevance rule, plus "correctly abstained").

No public dataset of (ticket, correct article) pairs exists (reference/ai.md §2.4, §9), so this one was written for
the purpose. Relevance rule: a ticket's article is the one runbook a technician would open for it; 12 tickets have
no article in this KB (the right answer is no link). The tickets were written as users write (symptoms, not the
article's words) before the retriever's threshold was chosen, but by the same person who wrote the retriever:
treat the figures as optimistic, and re-measure on an MSP's own KB and tickets.
"""

from __future__ import annotations

ARTICLES: dict[str, tuple[str, str]] = {
    "vpn": ("VPN tunnel disconnects", """# VPN tunnel disconnects

## Symptoms
Remote users lose the VPN connection at regular intervals, often every hour, and must reconnect.

## Fix
The IKE phase 1 lifetime on the client is shorter than on the firewall. Set both to 28800 s and enable dead peer
detection with a keepalive of 60 s. Check the firewall log for rekey failures.
"""),
    "outlook_prompt": ("Outlook keeps asking for a password", """# Outlook keeps asking for a password

## Symptoms
Outlook shows a credentials prompt again and again, even after the right password is typed.

## Fix
Close Outlook, open Credential Manager and remove every entry that starts with MicrosoftOffice16. Make sure modern
authentication is on for the tenant, then start Outlook and sign in once.
"""),
    "printer": ("Print jobs stuck in the queue", """# Print jobs stuck in the queue

Documents are sent to the printer but nothing prints; the queue shows jobs waiting or in error.

## Fix
Stop the Print Spooler service, delete the files in C:\\Windows\\System32\\spool\\PRINTERS, start the spooler again.
If the printer is offline, check its IP address has not changed and reinstall the driver.
"""),
    "mfa": ("Reset multi-factor authentication", """# Reset multi-factor authentication

## When
A user has a new phone, lost their phone, or the Authenticator app no longer shows the account.

## Steps
In the Entra admin centre open the user, Authentication methods, Require re-register MFA. Ask the user to sign in at
aka.ms/mfasetup and add the account to Microsoft Authenticator on the new phone.
"""),
    "lockout": ("Account locked out or password expired", """# Account locked out or password expired

## Symptoms
The user cannot sign in to Windows or Microsoft 365: account locked, password expired, or wrong password after a
change.

## Fix
Unlock the account in Active Directory Users and Computers. If the password expired, have the user reset it through
self-service password reset at aka.ms/sspr. Check for old credentials on phones that cause repeated lockouts.
"""),
    "onedrive": ("OneDrive is not syncing", """# OneDrive is not syncing

## Symptoms
Files show a red cross or sync pending; changes do not reach SharePoint; the OneDrive cloud icon is paused.

## Fix
Check the path length and invalid characters, then reset OneDrive with onedrive.exe /reset. If the user is out of
storage, ask for more space or remove large files from the library.
"""),
    "onboarding": ("New starter setup", """# New starter setup

## Before the first day
Create the user in Active Directory from the department template, assign a Microsoft 365 Business Premium licence,
add the user to the department groups and shared mailboxes.

## Laptop
Enrol the laptop in Intune with Autopilot, install the standard apps and hand it over with the welcome sheet.
"""),
    "offboarding": ("Leaver process", """# Leaver process

## On the last day
Disable the user account, revoke sessions, remove the licence and convert the mailbox to a shared mailbox. Set an
auto-reply and give the manager access to the mailbox and the OneDrive files.

## Devices
Collect the laptop and phone, wipe them with Intune and update the asset register.
"""),
    "shared_mailbox": ("Access to a shared mailbox or calendar", """# Access to a shared mailbox or calendar

A user needs to open a shared mailbox, send as it, or edit another person's calendar.

## Steps
In the Exchange admin centre give Full Access (and Send As if asked) on the shared mailbox; the mailbox appears in
Outlook within an hour. For a calendar, the owner shares it with Editor rights from Outlook.
"""),
    "wifi": ("Office Wi-Fi will not connect", """# Office Wi-Fi will not connect

## Symptoms
A laptop cannot join the office wireless network, or connects without internet access.

## Fix
Forget the network and reconnect. The corporate SSID uses certificate authentication: check the device certificate
is valid and the laptop is in the right Intune group. Guest Wi-Fi needs the weekly password from reception.
"""),
    "teams_audio": ("No sound or microphone in Teams meetings", """# No sound or microphone in Teams meetings

## Symptoms
Others cannot hear the user in a Teams call, or the user hears nothing; the headset is not detected.

## Fix
In Teams settings, Devices, pick the headset for speaker and microphone and make a test call. Check Windows privacy
settings allow microphone access, update the headset firmware, try another USB port.
"""),
    "disk": ("Low disk space on the C drive", """# Low disk space on the C drive

A warning says the C: drive is almost full, or updates fail for lack of space.

## Fix
Run Disk Cleanup with system files, empty the recycle bin, move large downloads to OneDrive and turn on Storage
Sense. On servers, check the size of log folders and the WinSxS store.
"""),
    "restore": ("Restore a deleted file", """# Restore a deleted file

## From OneDrive or SharePoint
Open the recycle bin of the site or OneDrive; items stay 93 days. Restore the file or use Restore your OneDrive for
a point in time.

## From the server backup
Open the backup console, pick the restore point from before the deletion and restore the file to its original
folder or an alternate location.
"""),
    "slow_pc": ("Computer is slow", """# Computer is slow

## Symptoms
The laptop takes minutes to start, apps freeze, the fan is loud, Task Manager shows high CPU or memory.

## Fix
Restart it (many have not restarted for weeks). Check startup apps, pending Windows updates and the antivirus scan
schedule. If memory is always full, request a RAM upgrade.
"""),
    "phishing": ("Suspicious email or phishing", """# Suspicious email or phishing

## If a user reports a suspicious email
Ask them not to click anything and to use the Report button in Outlook. Check the message trace, block the sender,
and purge the message from every mailbox.

## If they clicked or typed their password
Reset the password, revoke sessions, review sign-in logs and inbox rules for forwarding.
"""),
    "office_activation": ("Office says unlicensed product", """# Office says unlicensed product

## Symptoms
Word or Excel shows "Unlicensed Product" or "Product notice: most features have been disabled".

## Fix
Check the user has a Microsoft 365 Apps licence assigned, then sign out of Office and back in. If it stays, run the
Microsoft Support and Recovery Assistant to reset Office activation.
"""),
}

# (ticket subject and body, the article it should link, or None when no article applies)
CASES: list[tuple[str, str | None]] = [
    ("VPN keeps dropping. Working from home and the vpn disconnects every hour, have to log in again", "vpn"),
    ("Remote connection unstable - lost the VPN three times this morning", "vpn"),
    ("Outlook asking for my password constantly, I type it and it pops up again", "outlook_prompt"),
    ("Credentials prompt in Outlook won't go away since this morning", "outlook_prompt"),
    ("Nothing prints. Sent 5 documents to the printer on floor 2, they sit in the queue", "printer"),
    ("Printer offline in the accounts office, jobs stuck with error", "printer"),
    ("Got a new phone, authenticator app doesn't have my work account anymore", "mfa"),
    ("Lost my mobile, can't approve the sign in request (MFA)", "mfa"),
    ("I'm locked out of my account, tried my password too many times", "lockout"),
    ("Password expired and I can't sign in to Windows", "lockout"),
    ("OneDrive not syncing, red cross on all my files", "onedrive"),
    ("My files don't reach SharePoint, OneDrive says sync pending for two days", "onedrive"),
    ("New starter on Monday: Jane Doe, sales department, needs an account and a laptop", "onboarding"),
    ("Please set up a user for our new employee starting next week", "onboarding"),
    ("John leaves on Friday, please disable his account and give his manager his mailbox", "offboarding"),
    ("Employee leaving the company, collect laptop and remove licence", "offboarding"),
    ("Can you give me access to the info@ shared mailbox?", "shared_mailbox"),
    ("I need to edit my boss's calendar and send as the sales mailbox", "shared_mailbox"),
    ("Laptop can't connect to the office wifi", "wifi"),
    ("Wireless connected but no internet in the meeting room", "wifi"),
    ("People can't hear me in Teams calls, headset not detected", "teams_audio"),
    ("No sound in Teams meeting, microphone not working", "teams_audio"),
    ("Warning: C drive almost full, updates fail", "disk"),
    ("Disk space low on my laptop", "disk"),
    ("Deleted a folder by mistake yesterday, can you get it back from backup?", "restore"),
    ("Need to restore an old version of a spreadsheet I deleted from SharePoint", "restore"),
    ("Laptop extremely slow, takes 10 minutes to start and apps freeze", "slow_pc"),
    ("PC is really sluggish, fan always loud", "slow_pc"),
    ("Got a weird email asking me to confirm my bank details, is it phishing?", "phishing"),
    ("I clicked a link in a suspicious email and entered my password", "phishing"),
    ("Excel says unlicensed product and I can't edit", "office_activation"),
    ("Word: product notice most features have been disabled", "office_activation"),
    ("Please order three new 27 inch monitors for the design team", None),
    ("Quote for a new firewall for the Leeds site", None),
    ("Question about last month's invoice", None),
    ("The CCTV camera at the back door is offline", None),
    ("Change the voicemail greeting on the main phone line", None),
    ("Renew the company domain name before it expires", None),
    ("Meeting room booking screen shows the wrong room", None),
    ("Can we get Adobe Acrobat Pro for two people in marketing", None),
    ("Door access card not working for the new office", None),
    ("Move the fax line to the new number", None),
    ("Website contact form sends no emails", None),
    ("Install the accounting software update on the server tonight", None),
]
