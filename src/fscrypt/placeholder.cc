// Keeps the fscrypt layer's library non-empty until its first source lands.
