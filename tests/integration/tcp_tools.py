"""Tiny TCP peers for the dataplane tests, run inside a network namespace.

  serve IP PORT            answer each connection: read a request line, reply "OK <n>\\n" per line
  request IP PORT          send "GET /" and print the answer; exit 1 if none within 2 s
  stream IP PORT SECONDS   one connection, a line every 50 ms; print the elapsed time of each echo
"""
import socket
import sys
import threading
import time


def serve(ip, port):
    server = socket.socket(socket.AF_INET6 if ":" in ip else socket.AF_INET)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((ip, port))
    server.listen(16)
    print("listening", flush=True)

    def handle(connection):
        with connection, connection.makefile("rwb") as stream:
            count = 0
            for line in stream:
                count += 1
                stream.write(b"OK %d %s" % (count, line))
                stream.flush()

    while True:
        connection, _ = server.accept()
        threading.Thread(target=handle, args=(connection,), daemon=True).start()


def request(ip, port):
    try:
        with socket.create_connection((ip, port), timeout=2) as connection:
            connection.sendall(b"GET / HTTP/1.0\n")
            answer = connection.makefile("rb").readline()
    except OSError as error:
        print("failed:", error)
        return 1
    print(answer.decode().strip())
    return 0 if answer.startswith(b"OK 1") else 1


def stream(ip, port, seconds):
    start = time.time()
    with socket.create_connection((ip, port), timeout=2) as connection:
        connection.settimeout(0.2)
        reader = connection.makefile("rb")
        while time.time() - start < seconds:
            try:
                connection.sendall(b"ping\n")
                if reader.readline():
                    print("%.2f" % (time.time() - start), flush=True)
            except OSError:
                pass
            time.sleep(0.05)
    return 0


if __name__ == "__main__":
    command, ip, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if command == "serve":
        serve(ip, port)
    elif command == "request":
        sys.exit(request(ip, port))
    elif command == "stream":
        sys.exit(stream(ip, port, float(sys.argv[4])))
