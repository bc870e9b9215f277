package apps

// ExampleJSON is the documented "apps" section of the config file: a
// server app (chat), a client its manifest lists (notes), and a client
// that can reach chat only with a chooser token (camera). The tests decode
// and validate it, so docs/CONFIG.md can quote it as it is.
const ExampleJSON = `[
  {
    "id": "chat",
    "name": "Chat server",
    "credential_hash": "sha256$ed88ebb51629f39bbc2b1f7aea4ed66b4cb86998e2a19137f45a7ad79bf9b508",
    "listen": ["/chat/", "chat.example.com/rooms/"],
    "admit": {
      "apps": ["notes"],
      "origins": ["https://friends.example"],
      "tokens": true
    }
  },
  {
    "id": "notes",
    "name": "Notes",
    "credential_hash": "sha256$5ba58fbcbb53d0eede353c99ac0f0fe8f955328eb9968ceb068a0595b1ff5d31",
    "origins": ["https://notes.example"],
    "servers": ["chat"]
  },
  {
    "id": "camera",
    "name": "Camera",
    "credential_hash": "sha256$98687951b69fc61a3f3c3365d0270a40afb785e820e35e4389af8e1379de088b"
  }
]`
