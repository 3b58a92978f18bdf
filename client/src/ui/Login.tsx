import { useState } from 'preact/hooks';
import { api, errorText } from '../api.ts';
import type { User } from '../lib/types.ts';

export function Login({ onSignedIn }: { onSignedIn: (u: User) => void }) {
  const [mode, setMode] = useState<'login' | 'register'>('login');
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const r = await api<{ user: User }>('POST', mode === 'login' ? '/api/auth/login' : '/api/auth/register', { username, password });
      onSignedIn(r.user);
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <main class="login">
      <h1>Attune</h1>
      <p class="muted">A chat that learns how you like your answers.</p>
      <form onSubmit={submit} aria-labelledby="login-title">
        <h2 id="login-title">{mode === 'login' ? 'Sign in' : 'Create an account'}</h2>
        <label for="username">Username</label>
        <input id="username" name="username" autoComplete="username" required value={username} onInput={(e) => setUsername(e.currentTarget.value)} />
        <label for="password">Password</label>
        <input
          id="password"
          name="password"
          type="password"
          autoComplete={mode === 'login' ? 'current-password' : 'new-password'}
          required
          value={password}
          onInput={(e) => setPassword(e.currentTarget.value)}
        />
        {mode === 'register' && <p class="hint">At least 8 characters.</p>}
        {error && (
          <p class="error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" class="primary" disabled={busy}>
          {mode === 'login' ? 'Sign in' : 'Create account'}
        </button>
        <button type="button" class="link" onClick={() => { setMode(mode === 'login' ? 'register' : 'login'); setError(null); }}>
          {mode === 'login' ? 'No account? Create one' : 'Have an account? Sign in'}
        </button>
      </form>
    </main>
  );
}
