#!/usr/bin/env python3
"""Every gst-launch-1.0 line of README.md and of the elements' documentation, and every script
of pipelines/, run as written, with a bounded number of buffers (TAP output).

    tests/scripts/test_launch_lines.py SOURCE_ROOT BUILD_ROOT

Blocks come from README.md (```sh fences) and from the `|[ ... ]|` examples of plugin/*.c and
gst/*.c. A block that holds a gst-launch-1.0 command runs whole (its other commands make the
files it reads), in one shell, in a scratch directory where `build`, `models` and `pipelines`
point into the tree, as a user would type it at the top of the repository; the one change is
that /tmp/ is that block's own directory, so that runs in parallel never share files. README
lines that run a pipelines/ script run it with NUM_BUFFERS=10 (the scripts' own bound for
finite runs); every pipelines/ script runs once like that. Commands are killed after TIMEOUT seconds: a
line that does not end by itself fails.

A block is skipped, with the reason, only when it needs a camera, a microphone or an MQTT
broker that is not there. A run fails
on a non-zero exit status, on gst-launch-1.0's "erroneous pipeline" (e.g. a property value it
could not parse, which it otherwise only prints), on an ERROR, CRITICAL or element WARNING in
the output, and, for `-m` runs through imagebindmatch, when no imagebind-match message came.
"""
import http.server
import os
import re
import shutil
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading

TIMEOUT = 180
DEVICE_SOURCES = {
    'v4l2src': 'needs a camera', 'autovideosrc': 'needs a camera',
    'autoaudiosrc': 'needs a microphone', 'pulsesrc': 'needs a microphone',
    'alsasrc': 'needs a microphone', 'pipewiresrc': 'needs a camera or a microphone',
}
FAILURES = [
    ('erroneous pipeline', 'gst-launch-1.0 could not build the pipeline as written'),
    ('could not set property', 'a property value was refused'),
    ('ERROR', 'an error was printed'),
    ('CRITICAL', 'a critical warning was printed'),
    ('WARNING: from element', 'an element posted a warning'),
]


def commands_of(lines):
    """Joins backslash continuations; drops comments and blank lines."""
    out, cur = [], ''
    for line in lines:
        line = line.rstrip()
        if not cur and (not line.strip() or line.lstrip().startswith('#')):
            continue
        if line.endswith('\\'):
            cur += line[:-1].rstrip() + ' '
            continue
        out.append((cur + line.strip()).strip())
        cur = ''
    if cur:
        out.append(cur.strip())
    return out


def readme_blocks(root):
    text = open(os.path.join(root, 'README.md'), encoding='utf-8').read()
    for n, m in enumerate(re.finditer(r'```sh\n(.*?)```', text, re.S)):
        line_no = text.count('\n', 0, m.start()) + 1
        yield 'README.md:%d' % line_no, commands_of(m.group(1).splitlines())


def doc_blocks(root):
    for sub in ('plugin', 'gst'):
        d = os.path.join(root, sub)
        for name in sorted(os.listdir(d)):
            if not name.endswith('.c'):
                continue
            text = open(os.path.join(d, name), encoding='utf-8').read()
            for m in re.finditer(r'\|\[\n(.*?)\n\s*\*\s*\]\|', text, re.S):
                line_no = text.count('\n', 0, m.start()) + 1
                lines = [re.sub(r'^\s*\* ?', '', l) for l in m.group(1).splitlines()]
                yield '%s/%s:%d' % (sub, name, line_no), commands_of(lines)


def runnable(commands):
    """The commands a user would run from the block, and why some are left out."""
    keep, notes = [], []
    for cmd in commands:
        parts = [p.strip() for p in cmd.split('&&')]
        for part in parts:
            if part.startswith('.ci/install-deps'):
                notes.append('not run: %s (installs packages)' % part)
            elif part.startswith('tests/run-tests.sh'):
                notes.append('not run: %s (the whole test suite)' % part)
            else:
                keep.append(part)
    return keep, notes


def is_launch(cmd):
    return 'gst-launch-1.0' in cmd or re.search(r'(^|\s)pipelines/\S+\.sh', cmd)


class Hook(http.server.BaseHTTPRequestHandler):
    """A webhook for the examples that POST to http://127.0.0.1:8080/hook."""

    def do_POST(self):
        self.rfile.read(int(self.headers.get('Content-Length', 0)))
        self.send_response(200)
        self.send_header('Content-Length', '0')
        self.end_headers()

    def log_message(self, *args):
        pass


def start_hook():
    try:
        server = socketserver.TCPServer(('127.0.0.1', 8080), Hook)
    except OSError:
        return None
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def listening(port):
    try:
        socket.create_connection(('127.0.0.1', port), timeout=2).close()
        return True
    except OSError:
        return False


def main():
    if len(sys.argv) != 3:
        print('usage: test_launch_lines.py SOURCE_ROOT BUILD_ROOT', file=sys.stderr)
        return 2
    root, build = (os.path.abspath(a) for a in sys.argv[1:])
    if not os.path.isfile(os.path.join(root, 'models', 'imagebind-default.gguf')):
        print('1..0 # SKIP the shipped model models/imagebind-default.gguf is absent')
        return 0

    scratch = tempfile.mkdtemp(prefix='ib-launch-lines-')
    for name, target in (('build', build), ('models', os.path.join(root, 'models')),
                         ('pipelines', os.path.join(root, 'pipelines'))):
        os.symlink(target, os.path.join(scratch, name))
    env = dict(os.environ)
    for var in ('GST_PLUGIN_SYSTEM_PATH_1_0', 'GST_PLUGIN_PATH_1_0', 'IMAGEBIND_MODEL', 'MODEL'):
        env.pop(var, None)
    env['GST_PLUGIN_PATH'] = os.path.join(build, 'plugin')
    env['GST_REGISTRY_1_0'] = os.path.join(build, 'tests', 'registry-launch-lines.bin')
    env['NUM_BUFFERS'] = '10'
    env['FAST'] = '1'
    env['DEVICE'] = '/nonexistent'      # camera-tagging.sh: its test source, not a camera
    env['G_DEBUG'] = 'fatal-criticals'

    blocks = [b for b in list(readme_blocks(root)) + list(doc_blocks(root))
              if any(is_launch(c) for c in b[1])]
    scripts = sorted(f for f in os.listdir(os.path.join(root, 'pipelines'))
                     if f.endswith('.sh') and f != 'common.sh')
    named = set()
    for _, cmds in blocks:
        for c in cmds:
            named.update(re.findall(r'pipelines/(\S+\.sh)', c))
    blocks += [('pipelines/%s' % s, ['pipelines/%s' % s]) for s in scripts if s not in named]

    hook = start_hook()
    print('1..%d' % len(blocks))
    failed = 0
    for n, (where, cmds) in enumerate(blocks, 1):
        cmds, notes = runnable(cmds)
        for note in notes:
            print('# %s: %s' % (where, note))
        need = [why for src, why in DEVICE_SOURCES.items()
                if any(re.search(r'(^|[\s!])%s(\s|$)' % src, c) for c in cmds)]
        if need:
            print('ok %d - %s # SKIP %s' % (n, where, need[0]))
            continue
        if any('mqtt://' in c for c in cmds) and os.environ.get('IMAGEBIND_PUBLISH_NO_MQTT'):
            print('ok %d - %s # SKIP imagebindpublish was built without libmosquitto (-Dmqtt)'
                  % (n, where))
            continue
        if any('mqtt://127.0.0.1:1883' in c for c in cmds) and not listening(1883):
            print('ok %d - %s # SKIP no MQTT broker on 127.0.0.1:1883 (the publish tests run '
                  'this line against their own)' % (n, where))
            continue
        if any('127.0.0.1:8080' in c for c in cmds) and not hook:
            print('ok %d - %s # SKIP 127.0.0.1:8080 is in use: no webhook for the example'
                  % (n, where))
            continue
        tmp = os.path.join(scratch, 'tmp%d' % n)
        os.mkdir(tmp)
        script = 'set -e\n' + '\n'.join(c.replace('/tmp/', tmp + '/') for c in cmds) + '\n'
        try:
            proc = subprocess.run(['timeout', str(TIMEOUT), 'bash', '-c', script], cwd=scratch,
                                  env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  timeout=TIMEOUT + 30)
            out, rc = proc.stdout.decode('utf-8', 'replace'), proc.returncode
        except subprocess.TimeoutExpired as e:
            out, rc = (e.stdout or b'').decode('utf-8', 'replace'), 124
        why = None
        if rc == 124:
            why = 'did not end within %d s (not bounded)' % TIMEOUT
        elif rc != 0:
            why = 'exit status %d' % rc
        else:
            for pattern, what in FAILURES:
                if pattern in out:
                    why = what
                    break
        if not why and any('gst-launch-1.0' in c and ' -m ' in c and 'imagebindmatch' in c
                           and 'post-messages=false' not in c for c in cmds):
            if 'imagebind-match, ' not in out:
                why = 'no imagebind-match message'
        if why:
            failed += 1
            print('not ok %d - %s: %s' % (n, where, why))
            for c in cmds:
                print('#   $ %s' % c)
            for line in out.splitlines()[-25:]:
                print('#   %s' % line)
            for name in sorted(os.listdir(tmp)):
                print('#   /tmp/%s: %d bytes' % (name, os.path.getsize(os.path.join(tmp, name))))
        else:
            print('ok %d - %s: %d command(s), %d imagebind-match messages'
                  % (n, where, len(cmds), out.count('imagebind-match, ')))
    if hook:
        hook.shutdown()
    shutil.rmtree(scratch, ignore_errors=True)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
