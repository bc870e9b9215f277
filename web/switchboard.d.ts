// Type declarations of switchboard.js, Switchboard's browser library.
// The module is served by the broker at /.switchboard/web/switchboard.js and
// runs in pages and dedicated workers with no build step.

/** Settings in force for services and clients started afterwards. */
export interface Settings {
  /** Broker base URL (ws, wss, http or https). Default: where the module was loaded from. */
  broker: string;
  /** Credential that services present in Hello (owns their scope). Default: "" (dev mode). */
  credential: string;
  /**
   * Listen grant (a JWT the site's backend mints, docs/BROWSER.md), or a
   * function that returns one, called for a fresh grant each time a service
   * link opens. Used when no credential is given. Default: null.
   */
  token: string | (() => string | Promise<string>) | null;
}

/** configure sets the broker and credential; returns the settings in force. */
export function configure(options?: Partial<Settings>): Settings;

/** Options shared by the service classes. */
export interface ServiceOptions {
  /** Version label of this instance, shown in the dashboard. */
  label?: string;
  /** Admitted client origins; empty: any. */
  origins?: string[];
  /** Overrides configure()'s credential. */
  credential?: string;
  /** Overrides configure()'s broker. */
  broker?: string;
  /** Bytes of unacknowledged client data this instance holds per channel (0: broker default). */
  window?: number;
  /** Overrides configure()'s token (listen grant). */
  token?: string | (() => string | Promise<string>) | null;
  /**
   * Milliseconds that new clients' connects wait for the next instance
   * while this page reloads (capped by the broker's accept timeout);
   * 0: refused at once. Shows that the scope exists meanwhile (docs/SECURITY.md).
   */
  hold?: number;
}

/** An Error frame from the broker or the service link failing. */
export class LinkError extends Error {
  /** The protocol's error code (3 unauthorized, 4 bad scope, …), 0 when the link broke. */
  readonly code: number;
}

/**
 * Where a service's link to the broker is. A link that is lost (network,
 * broker restart) goes to 'reattaching': the library attaches again by
 * itself with backoff, at the same URL where the broker allows, keeps its
 * open connections, and ends those the broker no longer has. A first
 * attach that fails because the broker cannot be reached (down at page
 * load) stays 'attaching' and is tried again the same way (statechange
 * 'attaching' with the error; `ready` resolves once attached); a refusal
 * (credential, scope, grant) ends it at once and `ready` rejects.
 */
export type ServiceState = 'attaching' | 'attached' | 'reattaching' | 'closed';

/** The statechange event of the service classes. */
export interface StateChangeEvent extends Event {
  readonly state: ServiceState;
  /** Why the first attach failed ('attaching'), the link was lost ('reattaching') or ended ('closed'); null otherwise. */
  readonly error: LinkError | null;
}

/** Error event of the service classes. */
export interface SwitchboardErrorEvent extends Event {
  readonly error: unknown;
  readonly message: string;
}

/**
 * The service's end of one client connection, shaped like a WebSocket. It is
 * open when handed to the application.
 */
export class ServerWebSocket extends EventTarget {
  static readonly CONNECTING: 0;
  static readonly OPEN: 1;
  static readonly CLOSING: 2;
  static readonly CLOSED: 3;
  readonly CONNECTING: 0;
  readonly OPEN: 1;
  readonly CLOSING: 2;
  readonly CLOSED: 3;
  readonly readyState: 0 | 1 | 2 | 3;
  /** The subprotocol (intent) chosen for this connection, "" if none. */
  readonly protocol: string;
  /** The URL the client connected to. */
  readonly url: string;
  readonly extensions: string;
  /** Bytes waiting for the broker's credit. */
  readonly bufferedAmount: number;
  /** The client's Origin header ("" when it sent none). */
  readonly origin: string;
  /** The client's address as the broker saw it. */
  readonly remoteAddress: string;
  /** The verified app id of the client ("" for anonymous clients). */
  readonly app: string;
  /** The broker's channel id. */
  readonly channel: number;
  binaryType: 'blob' | 'arraybuffer';
  onopen: ((this: ServerWebSocket, ev: Event) => any) | null;
  onmessage: ((this: ServerWebSocket, ev: MessageEvent) => any) | null;
  onclose: ((this: ServerWebSocket, ev: CloseEvent) => any) | null;
  onerror: ((this: ServerWebSocket, ev: Event) => any) | null;
  /** Sends a text (string) or binary (ArrayBuffer, view, Blob) message. */
  send(data: string | ArrayBufferLike | ArrayBufferView | Blob): void;
  /** Closes with 1000 or a code in 3000–4999 and a reason of at most 123 bytes. */
  close(code?: number, reason?: string): void;
}

/** The connection event of a WebSocketListener. */
export interface ConnectionEvent extends Event {
  readonly socket: ServerWebSocket;
}

/** Seed 002: a page registers for incoming connections. */
export class WebSocketListener extends EventTarget {
  static readonly OPENING: 0;
  static readonly LISTENING: 1;
  static readonly CLOSED: 2;
  readonly OPENING: 0;
  readonly LISTENING: 1;
  readonly CLOSED: 2;
  /**
   * @param scopeUrl the scope to listen on ("/chat/", "ws://host/chat/"); none: a fresh private scope
   * @param protocol subprotocol(s) accepted, in order of preference
   */
  /**
   * scopeUrl: a scope, null for a fresh private scope, or (seed 002, docs/ORIGINS.md) a port:
   * the broker's port gives a private scope, another throws NotSupportedError.
   * protocol: clients must offer one of these.
   */
  constructor(scopeUrl?: string | number | null, protocol?: string | string[], options?: ServiceOptions);
  readonly readyState: 0 | 1 | 2;
  /** The port clients connect to (the mapped external port where port mapping is on). */
  readonly port: number;
  /** The URL clients connect to. */
  readonly url: string;
  /** The scope as registered, e.g. "/~k3x9…/". */
  readonly scope: string;
  /** Whether this instance is the active one of its registration. */
  readonly active: boolean;
  /** Where the link is; readyState is OPENING again while 'reattaching'. */
  readonly state: ServiceState;
  /** The open connections. */
  readonly sockets: Set<ServerWebSocket>;
  /** Resolves when LISTENING; rejects with a LinkError when the broker refuses. */
  readonly ready: Promise<WebSocketListener>;
  onconnection: ((this: WebSocketListener, ev: ConnectionEvent) => any) | null;
  onlistening: ((this: WebSocketListener, ev: Event) => any) | null;
  onerror: ((this: WebSocketListener, ev: SwitchboardErrorEvent) => any) | null;
  onclose: ((this: WebSocketListener, ev: Event) => any) | null;
  /** Fired when state changes; after 'attached' again, listening fires too (url may change only for a private scope the broker did not give back). */
  onstatechange: ((this: WebSocketListener, ev: StateChangeEvent) => any) | null;
  /** The broker's public URL for this scope changed (a port mapping made, lost or moved); `url` has the new one. */
  onurlchange: ((this: WebSocketListener, ev: Event) => any) | null;
  /** Sends one message to every client whose URL path starts with prefix ("" for all). */
  push(data: string | ArrayBufferLike | ArrayBufferView | Blob, prefix?: string): void;
  /** Stops listening and closes every connection with 1001. */
  close(): void;
}

/** Seed 001: the http-like head of a handshake request or response. */
export interface Handshake {
  /** "GET /path HTTP/1.1" or "HTTP/1.1 101 Switching Protocols". */
  firstLine: string;
  /** Header names to values (repeated headers joined with ", "; a response may give an array). */
  headers: Record<string, string | string[]>;
  /** The body as byte values. */
  body: number[];
}

/** Seed 001: what the factory returns for one connection; the library adds send and close. */
export interface ConnectionHandler {
  /**
   * Changes the response (add headers; pick a subprotocol with
   * Sec-WebSocket-Protocol, one the client offered: another refuses the
   * client and fires error on the BrowserSocket; a status other than 101
   * answers with that HTTP response) or returns null to cancel: the client
   * then gets the same bytes as for a URL no service owns.
   */
  handshakeResponseLoop?(interceptedResponse: Handshake): Handshake | null | Promise<Handshake | null>;
  onopen?: ((ev: Event) => any) | null;
  onmessage?: ((ev: MessageEvent<string | ArrayBuffer>) => any) | null;
  onerror?: ((ev: Event) => any) | null;
  onclose?: ((ev: CloseEvent) => any) | null;
  /** Added by the library: sends a text or binary message. */
  send?(data: string | ArrayBufferLike | ArrayBufferView | Blob): boolean;
  /** Added by the library. */
  close?(code?: number, reason?: string): void;
}

/** Seed 001: receives connections for a fresh scope. */
export class BrowserSocket extends EventTarget {
  /**
   * @param connectionHandlerFactory called (with `new` when it is a constructor) with the handshake request
   * @param options scope: listen on this scope instead of a fresh private one
   */
  constructor(connectionHandlerFactory: (handshakeRequest: Handshake) => ConnectionHandler, options?: ServiceOptions & { scope?: string });
  /** The TCP port clients connect to. */
  readonly port: number;
  /** The prefix of resource names mapped to this socket; starts and ends with "/". */
  readonly resourcePrefix: string;
  /** The URL clients connect to. */
  readonly url: string;
  readonly ready: Promise<BrowserSocket>;
  readonly state: ServiceState;
  onerror: ((this: BrowserSocket, ev: SwitchboardErrorEvent) => any) | null;
  onstatechange: ((this: BrowserSocket, ev: StateChangeEvent) => any) | null;
  /** The broker's public URL for this scope changed (a port mapping made, lost or moved); `url` has the new one. */
  onurlchange: ((this: BrowserSocket, ev: Event) => any) | null;
  /** Closes the socket and every connection. */
  stop(): void;
}

/**
 * Seed 003: the client's end of a connection, MessagePort-like. Messages are
 * held until start() or until onmessage is set.
 */
export class ServicePort extends EventTarget {
  readonly url: string;
  onmessage: ((this: ServicePort, ev: MessageEvent) => any) | null;
  onmessageerror: ((this: ServicePort, ev: Event) => any) | null;
  /** Fired when the service or the broker closes the connection (code, reason on the event). */
  onclose: ((this: ServicePort, ev: Event & { code: number; reason: string }) => any) | null;
  /** Sends a string, binary data, or any value JSON can hold (README: "Values on the wire"). */
  /** Structured clone as far as a network allows; throws DataCloneError for functions, ports, a transfer list. */
  postMessage(value: unknown, transfer?: unknown[]): void;
  start(): void;
  close(): void;
}

/**
 * Seed 003: connects to the service whose scope matches url. Rejects with a
 * DOMException named "AbortError" alike for no service and for a rejection.
 */
export function connect(url: string, protocols?: string | string[]): Promise<ServicePort>;

/** Seed 003: one connected client as the service sees it. */
export class CrossOriginClient {
  readonly origin: string;
  readonly targetUrl: string;
  /** The broker's channel id. */
  readonly id: number;
  /** The verified app id of the client, "" if anonymous. */
  readonly app: string;
  /** Sends a value to this client; throws InvalidStateError when it is not connected. */
  /** Structured clone as far as a network allows; throws DataCloneError for functions, ports, a transfer list. */
  postMessage(value: unknown, transfer?: unknown[]): void;
  close(code?: number, reason?: string): void;
}

export interface CrossOriginConnectEvent extends Event {
  readonly client: CrossOriginClient;
  /** The first call counts; no call rejects the client. */
  acceptConnection(shouldAccept: boolean | Promise<boolean>): void;
}

export interface CrossOriginMessageEvent extends Event {
  readonly data: unknown;
  readonly source: CrossOriginClient;
  readonly origin: string;
  readonly ports: readonly [];
}

export interface CrossOriginClients {
  /**
   * Every client connected to the registration (on every instance): the
   * same list on a superseded instance until it detaches; after that it
   * rejects, saying so.
   */
  getAll(): Promise<CrossOriginClient[]>;
}

/** Seed 003: the service side, what registerService returns. */
export class ServiceRegistration extends EventTarget {
  readonly crossOriginClients: CrossOriginClients;
  readonly ready: Promise<ServiceRegistration>;
  /** The scope as registered and the URL clients use, once ready. */
  readonly scope?: string;
  readonly url?: string;
  readonly active: boolean;
  readonly state: ServiceState;
  onstatechange: ((this: ServiceRegistration, ev: StateChangeEvent) => any) | null;
  /** The broker's public URL for this scope changed (a port mapping made, lost or moved); `url` has the new one. */
  onurlchange: ((this: ServiceRegistration, ev: Event) => any) | null;
  oncrossoriginconnect: ((this: ServiceRegistration, ev: CrossOriginConnectEvent) => any) | null;
  oncrossoriginmessage: ((this: ServiceRegistration, ev: CrossOriginMessageEvent) => any) | null;
  oncrossorigindisconnect: ((this: ServiceRegistration, ev: Event & { client: CrossOriginClient; code: number; reason: string }) => any) | null;
  onerror: ((this: ServiceRegistration, ev: SwitchboardErrorEvent) => any) | null;
  /** Detaches this instance (its clients wait for the next one), or closes them too. */
  unregister(closeClients?: boolean): void;
}

/** Seed 003: makes this page or worker the service of a scope. */
export function registerService(scopeUrl: string, options?: ServiceOptions): ServiceRegistration;

/** Seed 000: a WebSocket to another app, by wsapp://ID/ or wsapp://TOKEN/. */
export class AppSocket extends WebSocket {
  constructor(url: string, protocols?: string | string[]);
  /** The wsapp:// URL of the peer app. */
  readonly peerUrl: string;
}

/** Seed 000: the server app's view of a wsapp:// connect request. */
export interface AppConnectRequest {
  value: {
    /** The intents the client offered. */
    readonly clientProtocols: string[];
    /** wsapp://CALLER/ for a verified caller app. */
    readonly peerUrl: string;
    readonly origin: string;
    readonly url: string;
    /** Starts the connection with one of clientProtocols; not calling it skips the request. */
    accept(protocol: string): void;
    onopen: ((ev: Event) => any) | null;
    onmessage: ((ev: MessageEvent) => any) | null;
    onclose: ((ev: CloseEvent) => any) | null;
    onerror: ((ev: Event) => any) | null;
    send(data: string | ArrayBufferLike | ArrayBufferView | Blob): void;
    close(code?: number, reason?: string): void;
  };
}

/** Seed 000: serves wsapp:// connections for this page's app. */
export function setMessageHandler(
  type: 'wsconnect',
  handler: ((request: AppConnectRequest) => void | Promise<void>) | null,
  /** scope: where to listen; omitted, the broker says (the app's first listen scope). */
  options?: ServiceOptions & { scope?: string },
): Promise<void>;

/** Encodes a postMessage value as [payload, binary] (README: "Values on the wire"). */
export function encodeValue(value: unknown): [Uint8Array, boolean] | Promise<[Uint8Array, boolean]>;
/** Decodes a message into the value postMessage sent. */
export function decodeValue(payload: Uint8Array, binary: boolean): unknown;
