1 |user age:3 city=paris |ad id123
-1 |a x
1 2.5 |a x
-1 0 |a x
1 'tag1 |a x
1 'tag2|a x
-1 0.5 'tag3 |a x
1 0.5 tag4|a x
-1 tag5|a x
1 |user:2 age:3 city=paris
-1 |:0.5 x y:4
1 | x y
-1 |a a:-0.5 b:1e-2 c:+3 d:.25
1 |a x |a y
-1 |a

1	|a	x	y	|b	z
  -1   3   |a x  
1|a x
