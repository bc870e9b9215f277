// Types of switchboard.js: see below.
